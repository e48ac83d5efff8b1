"""The lab's workloads as Kubernetes manifests (pure: texts in, topology and findings out).

``manifests`` reads Namespaces, ServiceAccounts, Services and Deployments into a
``mesh.topology.Topology``; ``images`` maps container images to the lab's programs;
``profiles`` parses a profile (workload files plus a baseline); ``export`` renders manifests
for a real cluster. Reading files is the caller's (``mesh.lab.workloads``).
"""
