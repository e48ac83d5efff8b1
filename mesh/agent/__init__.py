"""The workload agent (Istio's pilot-agent SDS role): a pod's key, its CSR, its certificate.

- ``python -m mesh.agent`` (``mesh.agent.__main__``) is the pod's resident loop. It imports no
  ``cryptography``: it reads ``current/meta.json`` of the pod's secrets directory and, at
  start and at ``renew_at``, runs ``python -m mesh.agent.issue`` as a short-lived child.
  Why a child and not a thread: ``cryptography`` (OpenSSL's libcrypto bindings, tens of MB of
  mapped pages and heap, see ``bench/import_rss.py``) is then resident only for the second or
  so an issue takes, once per half-life, and never in the sidecar.
- ``mesh.agent.issue``: makes the private key *in the pod*, writes the CSR to
  ``$MESH_DIR/csr/<pod>.pem``, waits for the CA's answer in ``$MESH_DIR/certs/<pod>.pem``,
  verifies it (the key's own certificate, the expected SPIFFE identity, a chain to
  ``certs/root-cert.pem``, valid now) and writes a new generation of the secrets directory.
- ``mesh.agent.secrets``: the secrets directory as the contract spells it
  (``..gen-<n>/{key.pem, cert-chain.pem, root-cert.pem, meta.json}`` and the ``current``
  symlink swapped atomically), without ``cryptography``.
"""
