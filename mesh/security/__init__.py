"""Mesh security, pure: workload identity, mutual TLS and authorization (no I/O, time passed in).

Primitives:

- ``identity``: SPIFFE identities (``spiffe://cluster.local/ns/<ns>/sa/<sa>``) and the
  principals AuthorizationPolicy names (``cluster.local/ns/<ns>/sa/<sa>``);
- ``workload``: the facts about a pod that security reads (namespace, labels, service
  account, whether it has a sidecar) and Istio's workload selector;
- ``mtls``: PeerAuthentication resolved for a workload and port, what a client sidecar sends
  (auto mTLS and DestinationRule ``tls``), and the outcome of a connection;
- ``authz``: AuthorizationPolicy evaluated against the facts of one request, in Istio's order
  (CUSTOM, DENY, ALLOW; AUDIT and ``istio.io/dry-run`` reported);
- ``patterns``: Istio's string matching (exact, ``prefix*``, ``*suffix``, ``*``) and IP blocks;
- ``ca`` and ``certs``: the mesh CA and workload certificates (``cryptography``): root creation
  or Istio's ``cacerts`` layout, CSRs, signing, peer verification, renewal time;
- ``xfcc``: the ``X-Forwarded-Client-Cert`` value Envoy writes.

The sidecar and the manager (shells) call these; nothing here opens a socket or a file or
reads the clock.
"""
