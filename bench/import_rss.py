"""What TLS costs a process in memory: RSS of a fresh interpreter before and after importing
``ssl`` and ``cryptography`` (a benchmark for the sidecar's memory budget, not a test).

Each row runs in a new ``python`` process (so nothing is shared with this one), imports its
modules, then reads ``/proc/self/status``: ``VmRSS`` with its split into ``RssAnon`` (private
heap: paid by every process) and ``RssFile`` (mapped library pages: shared by every process
mapping the same file, e.g. all sidecars of one image on one host). Rows:

- ``bare``: ``python -c pass``;
- ``+ssl``: ``import ssl`` (maps libssl and libcrypto);
- ``+cryptography``: what a workload needs to make a key and a CSR and read certificates
  (``cryptography.x509``, ``hazmat.primitives.asymmetric.ec``, ``serialization``, ``hashes``);
- ``+mesh.security.ca``: the lab's CA and certificate code (``cryptography`` plus the lab's);
- ``sidecar``: the sidecar's modules as a proxy without a secrets directory starts them
  (``mesh.sidecar.memory_budget`` stubs OpenSSL out first), then the same with ``ssl``, with
  ``ssl`` + ``cryptography``, with ``ssl`` + the security core a sidecar needs (authz, mtls,
  tlsinfo: no ``cryptography``), and as a proxy with a secrets directory loads it
  (``mesh.sidecar.tls``, ``secure``, ``acceptor``).

Each row is measured ``--rounds`` times; the median is printed.

Run: ``.venv/bin/python bench/import_rss.py [--rounds 5]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = """
import json
{imports}
fields = {{}}
with open("/proc/self/status") as status:
    for line in status:
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0])
print(json.dumps(fields))
"""

CRYPTOGRAPHY = (
    "from cryptography import x509\n"
    "from cryptography.hazmat.primitives import hashes, serialization\n"
    "from cryptography.hazmat.primitives.asymmetric import ec"
)
SIDECAR_LEAN = (
    "from mesh.sidecar import memory_budget\nmemory_budget.stub_out_openssl()\n"
    "import mesh.sidecar.server"
)
SIDECAR = "import mesh.sidecar.server"
# What a TLS-speaking sidecar would import of the security core (no cryptography).
SECURITY = "import mesh.security.authz, mesh.security.mtls, mesh.security.tlsinfo"
# What a sidecar with a secrets directory loads (mesh.sidecar.guard imports these lazily).
SIDECAR_TLS = "import mesh.sidecar.tls, mesh.sidecar.secure, mesh.sidecar.acceptor"

ROWS: tuple[tuple[str, str], ...] = (
    ("bare", ""),
    ("+ssl", "import ssl"),
    ("+cryptography", CRYPTOGRAPHY),
    ("+ssl +cryptography", "import ssl\n" + CRYPTOGRAPHY),
    ("+mesh.security.ca (CA and certificates)", "import mesh.security.ca"),
    ("sidecar (no secrets dir: OpenSSL stubbed)", SIDECAR_LEAN),
    ("sidecar +ssl", "import ssl\n" + SIDECAR),
    ("sidecar +ssl +cryptography", "import ssl\n" + CRYPTOGRAPHY + "\n" + SIDECAR),
    ("sidecar +ssl +mesh.security (no crypto)", "import ssl\n" + SIDECAR + "\n" + SECURITY),
    ("sidecar with secrets dir (ssl + mTLS shell)", SIDECAR + "\n" + SIDECAR_TLS),
)


def measure(imports: str) -> dict[str, int]:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(imports=imports)],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
    )
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, median of {args.rounds} fresh processes, KiB")
    print(f"{'row':42} {'VmRSS':>7} {'RssAnon':>8} {'RssFile':>8} {'ΔRSS vs base':>13}")
    bases: dict[str, int] = {}
    for name, imports in ROWS:
        samples = [measure(imports) for _ in range(args.rounds)]
        row = {k: int(statistics.median(s[k] for s in samples)) for k in samples[0]}
        base_key = "sidecar" if name.startswith("sidecar") else "bare"
        bases.setdefault(base_key, row["VmRSS"])
        delta = row["VmRSS"] - bases[base_key]
        print(f"{name:42} {row['VmRSS']:7d} {row['RssAnon']:8d} {row['RssFile']:8d} {delta:+13d}")


if __name__ == "__main__":
    main()
