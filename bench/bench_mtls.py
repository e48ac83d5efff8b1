"""The mTLS row of ``make bench-sidecar`` (``bench/bench_sidecar.py`` calls ``mtls_rows``; run
alone: ``.venv/bin/python bench/bench_mtls.py``).

Two hops, same run, same layout (the front proxy on core 1, the back proxy on core 0 with the
upstream and wrk):

- sidecar A -> sidecar B in plaintext (no secrets directory: OpenSSL never loaded);
- sidecar A' -> sidecar B' over mTLS (each with a secrets directory and a certificate from
  ``mesh.security.ca.MeshCA``; auto mTLS, B' PERMISSIVE; the client checks B's SPIFFE
  identity, B' requires and verifies the client certificate), the upstream connections pooled
  (keep-alive) as in the plaintext pair;
- nginx -> nginx in plaintext (tuned: upstream keep-alive);
- nginx -> nginx over mutual TLS (``proxy_ssl_certificate`` to a ``listen ... ssl`` with
  ``ssl_verify_client on``, keep-alive and session reuse; the front does not check the
  back's name: ``proxy_ssl_verify off`` — the mesh certificates carry no DNS name — so nginx
  does a little less per connection than the sidecar).

Figures: ``wrk -t1 -c<c>`` throughput and ``wrk -c1`` p50, the median of ``rounds`` runs, and
the ratio mTLS / plaintext for each proxy; the RSS of sidecar A' (TLS loaded), judged against
the 40 MB budget of a TLS-speaking proxy.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mesh.security.ca import MeshCA  # noqa: E402
from mesh.sidecar.testing import (  # noqa: E402
    SidecarProcess,
    free_port,
    wait_for,
    write_secrets,
    write_snapshot,
)
from mesh.snapshot import Endpoint  # noqa: E402

RSS_TLS_MB = 40


def nginx_tls_front(config: Any, work: Path, port: int, backend: int, pki: Path) -> str:
    return config(
        work,
        "tlsfront",
        f"    upstream tlsback {{ server 127.0.0.1:{backend}; keepalive 128; }}\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n        location / {{\n"
        "            proxy_pass https://tlsback;\n            proxy_http_version 1.1;\n"
        '            proxy_set_header Connection "";\n            proxy_set_header Host $host;\n'
        f"            proxy_ssl_certificate {pki}/front-chain.pem;\n"
        f"            proxy_ssl_certificate_key {pki}/front-key.pem;\n"
        f"            proxy_ssl_trusted_certificate {pki}/root.pem;\n"
        "            proxy_ssl_verify off;\n            proxy_ssl_session_reuse on;\n"
        "            proxy_ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        }\n    }\n",
    )


def nginx_tls_back(config: Any, work: Path, port: int, upstream: int, pki: Path) -> str:
    return config(
        work,
        "tlsback",
        f"    upstream backend {{ server 127.0.0.1:{upstream}; keepalive 128; }}\n"
        f"    server {{\n        listen 127.0.0.1:{port} ssl;\n"
        f"        ssl_certificate {pki}/back-chain.pem;\n"
        f"        ssl_certificate_key {pki}/back-key.pem;\n"
        f"        ssl_client_certificate {pki}/root.pem;\n        ssl_verify_client on;\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;\n"
        "        location / {\n            proxy_pass http://backend;\n"
        '            proxy_http_version 1.1;\n            proxy_set_header Connection "";\n'
        "            proxy_set_header Host $host;\n        }\n    }\n",
    )


def _pki(work: Path, ca: MeshCA) -> Path:
    """nginx's certificates: the same CA and kind of workload certificate as the sidecars'."""
    pki = work / "pki"
    for name, sa in (("front", "nginx-front"), ("back", "nginx-back")):
        gen = write_secrets(work / f"nginx-{name}", ca, "default", sa)
        (pki / "x").parent.mkdir(exist_ok=True)
        pki.mkdir(exist_ok=True)
        (pki / f"{name}-chain.pem").write_bytes((gen / "cert-chain.pem").read_bytes())
        (pki / f"{name}-key.pem").write_bytes((gen / "key.pem").read_bytes())
    (pki / "root.pem").write_bytes(ca.root_pem)
    return pki


def mtls_rows(
    b: Any,  # bench_sidecar, for its helpers (nginx configs, wrk, median_run, rss_mb, pin)
    nginx: str,
    work: Path,
    host: str,
    up_port: int,
    plain_front: SidecarProcess,
    nginx_plain_port: int,
    procs: list[Any],
    sidecars: list[SidecarProcess],
    duration: int,
    rounds: int,
    conns: int,
) -> tuple[list[tuple[Any, ...]], float]:
    """Start the mTLS pair and the nginx TLS pair, measure all four two-hop paths; returns
    the table rows and the RSS (MB) of the TLS client sidecar."""
    ca = MeshCA.create(datetime.now(UTC))
    pki = _pki(work, ca)
    back_port, front_port = free_port(), free_port()
    procs.append(
        b.start_nginx(
            nginx, work, "tlsback", nginx_tls_back(b.nginx_config, work, back_port, up_port, pki), 0
        )
    )
    procs.append(b.start_nginx(nginx, work, "tlsfront",
                               nginx_tls_front(b.nginx_config, work, front_port, back_port, pki), 1))  # fmt: skip
    for port in (back_port, front_port):
        b.wait_port(port)

    mesh = work / "mesh-tls"
    secrets_a, secrets_b = work / "pods" / "tls-a" / "secrets", work / "pods" / "tls-b" / "secrets"
    write_secrets(secrets_a, ca, "default", "client")
    write_secrets(secrets_b, ca, "default", "benchb")
    tls_b = SidecarProcess(mesh, pod="tls-b", labels={"app": "benchb", "version": "v1"},
                           app_port=up_port, cpu=0,
                           extra=["--service-account", "benchb", "--secrets-dir", str(secrets_b)])  # fmt: skip
    tls_a = SidecarProcess(mesh, pod="tls-a", labels={"app": "client", "version": "v1"}, cpu=1,
                           access_log=str(work / "access-tls-a.log"),
                           extra=["--service-account", "client", "--secrets-dir", str(secrets_a)])  # fmt: skip
    server = Endpoint("tls-b", host, "127.0.0.1", tls_b.inbound_port, {"app": host, "version": "v1"},
                      service_account="benchb")  # fmt: skip
    write_snapshot(mesh, 1, b.bench_resources(host), [server])
    sidecars += [tls_a.start(wait_ready=True), tls_b.start(wait_ready=True)]
    tls_a.wait_version(1)
    wait_for(lambda: tls_a.admin_json("/certs").get("identity"), 10, "tls-a identity")
    wait_for(lambda: tls_b.admin_json("/certs").get("identity"), 10, "tls-b identity")

    urls = {
        "sidecar": f"http://127.0.0.1:{plain_front.outbound_port}/1k.bin",
        "sidecar mTLS": f"http://127.0.0.1:{tls_a.outbound_port}/1k.bin",
        "nginx": f"http://127.0.0.1:{nginx_plain_port}/1k.bin",
        "nginx TLS": f"http://127.0.0.1:{front_port}/1k.bin",
    }
    for name, url in urls.items():
        check = b.wrk(url, 4, 1, host)  # warm-up, and every path answers
        if check["errors"] or check["socket_errors"]:
            raise RuntimeError(f"{name}: {check}")
    stats = tls_a.admin_json("/certs")["stats"]
    assert stats["upstream_ssl_handshake"] >= 1, stats  # it really is mTLS
    time.sleep(0.2)
    rps = {
        n: b.median_run(lambda u=u: b.wrk(u, conns, duration, host), rounds)
        for n, u in urls.items()
    }
    p50 = {n: b.median_run(lambda u=u: b.wrk(u, 1, duration, host, latency=True), rounds)
           for n, u in urls.items()}  # fmt: skip
    assert tls_a.proc is not None
    rss = b.rss_mb(tls_a.proc.pid)

    def ratio(a: str, base: str, key: str, src: dict[str, dict[str, float]]) -> float:
        return src[a][key] / src[base][key] if src[base][key] else 0.0

    side_r = ratio("sidecar mTLS", "sidecar", "rps", rps)
    nginx_r = ratio("nginx TLS", "nginx", "rps", rps)
    rows = [
        (f"2 hops mTLS (req/s, c={conns})", "-",
         f"{rps['nginx']['rps']:.0f} / TLS {rps['nginx TLS']['rps']:.0f}",
         f"{rps['sidecar']['rps']:.0f} / mTLS {rps['sidecar mTLS']['rps']:.0f}",
         f"mTLS {side_r:.2f}x plain (nginx {nginx_r:.2f}x)",
         "(context)", None),
        ("2 hops mTLS p50 at c=1 (us)", "-",
         f"{p50['nginx']['p50']:.0f} / TLS {p50['nginx TLS']['p50']:.0f}",
         f"{p50['sidecar']['p50']:.0f} / mTLS {p50['sidecar mTLS']['p50']:.0f}",
         f"+{p50['sidecar mTLS']['p50'] - p50['sidecar']['p50']:.0f} us (nginx "
         f"+{p50['nginx TLS']['p50'] - p50['nginx']['p50']:.0f})",
         "(context)", None),
        ("RSS with TLS loaded (MB)", "-", "-", f"{rss:.1f}", "", f"<= {RSS_TLS_MB}",
         rss <= RSS_TLS_MB),
    ]  # fmt: skip
    return rows, rss


def main() -> int:
    """This row alone: the upstream, the two nginx pairs and the two sidecar pairs."""
    import argparse
    import subprocess
    import tempfile

    import bench_sidecar as b  # type: ignore[import-not-found]

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=64)
    args = ap.parse_args()
    b.need("wrk", "wrk")
    nginx = b.need("nginx", "nginx")
    work = Path(tempfile.mkdtemp(prefix="bench-mtls-"))
    (work / "www").mkdir()
    (work / "www" / "1k.bin").write_bytes(b"x" * 1024)
    procs: list[subprocess.Popen[bytes]] = []
    sidecars: list[SidecarProcess] = []
    host = "bench"
    try:
        up = free_port()
        procs.append(b.start_nginx(nginx, work, "upstream", b.nginx_upstream(work, up), 0))
        px, px2 = free_port(), free_port()
        procs.append(b.start_nginx(nginx, work, "proxy", b.nginx_tuned_proxy(work, px, up), 0))
        procs.append(b.start_nginx(nginx, work, "proxy2", b.nginx_tuned_proxy(work, px2, px), 1))
        for port in (up, px, px2):
            b.wait_port(port)
        mesh = work / "mesh"
        pb = SidecarProcess(mesh, pod="bench-b", labels={"app": "benchb", "version": "v1"},
                            app_port=up, cpu=0)  # fmt: skip
        pa = SidecarProcess(mesh, pod="bench-a", labels={"app": "client", "version": "v1"}, cpu=1,
                            access_log=str(work / "access-a.log"))  # fmt: skip
        write_snapshot(mesh, 1, b.bench_resources(host),
                       [Endpoint("bench-b", host, "127.0.0.1", pb.inbound_port,
                                 {"app": host, "version": "v1"})])  # fmt: skip
        sidecars += [pa.start(wait_ready=True), pb.start(wait_ready=True)]
        rows, _ = mtls_rows(b, nginx, work, host, up, pa, px2, procs, sidecars,
                            args.duration, args.rounds, args.connections)  # fmt: skip
    finally:
        b.stop_everything(sidecars, procs, work)
    for row in rows:
        print("  ".join(str(v) for v in row[:-1]), {True: "yes", False: "NO", None: ""}[row[-1]])
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    sys.exit(main())
