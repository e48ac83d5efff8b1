"""Mesh security, pure: workload identity, mutual TLS and authorization (no I/O, time passed in).

Primitives:

- ``identity``: SPIFFE identities (``spiffe://cluster.local/ns/<ns>/sa/<sa>``), the principals
  AuthorizationPolicy names (``cluster.local/ns/<ns>/sa/<sa>``), a pod's identity;
- ``workload``: Istio's workload selector, and whether a pod (``mesh.topology.Pod``) has a
  proxy;
- ``policy``: what the core reads of a loaded policy resource;
- ``mtls``: PeerAuthentication resolved for a workload and port, what a client sidecar sends
  (auto mTLS and DestinationRule ``tls``), and the outcome of a connection;
- ``authz``: AuthorizationPolicy evaluated against the facts of one request, in Istio's order
  (CUSTOM, DENY, ALLOW; AUDIT and ``istio.io/dry-run`` reported);
- ``patterns``: Istio's string matching (exact, ``prefix*``, ``*suffix``, ``*``), IP blocks and
  the SPIFFE tests of ``namespaces``, ``serviceAccounts``, ``trustDomains``;
- ``ca`` and ``certs``: the mesh CA and workload certificates (``cryptography``): root creation
  or Istio's ``cacerts`` layout, CSRs, signing, peer verification, renewal time — for the
  manager (the CA) and the agent that makes a workload's key;
- ``tlsinfo`` and ``xfcc``: a verified peer as the standard library's ``ssl`` reports it, and
  the ``X-Forwarded-Client-Cert`` value Envoy writes — for the sidecar, without
  ``cryptography``;
- ``analysis``: the cross-resource checks ``istioctl analyze`` and Kiali report for these kinds.

The sidecar and the manager (shells) call these; nothing here opens a socket or a file or
reads the clock.
"""
