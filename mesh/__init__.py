"""meshlab: Istio traffic management re-created in Python.

The map: Istio YAML (``mesh.config``: loader → frozen model → validation) is compiled by the
*manager* (control plane, ``mesh.manager``) together with the pod registry into one snapshot
file; every *sidecar* (data plane, ``mesh.sidecar``) watches that file and routes each request
with the pure engine (``mesh.routing`` decides, ``mesh.resilience`` rolls faults, counts
retries and ejects outliers). ``mesh.cli`` holds ``meshctl`` and ``meshlab``; ``mesh.lab``
starts the whole lab as local processes.

``mesh.config``, ``mesh.routing`` and ``mesh.resilience`` are pure: no sockets, no files, no
global state; randomness and time are passed in, and so is the world they reason about
(``mesh.topology``: Services, pods, labels), which a shell builds from Kubernetes manifests (``mesh.workloads``, ``mesh.lab.workloads``).
They import no shell; ``tests/test_architecture.py`` holds the layers and checks every
import against them.
"""
