"""Helpers to run real sidecars in tests and benchmarks (shipped in the package, as aiohttp
ships ``test_utils``): free ports, snapshot writing, a sidecar subprocess, tiny upstreams.

Primitives: ``free_port()``, ``write_snapshot(mesh_dir, version, resources, endpoints)``
(Istio documents published in the manager's normal form), ``gateway_resource()`` /
``gateway_process(mesh_dir)`` (an Istio Gateway and an ingress gateway on a free port),
``SidecarProcess`` (``python -OO -m mesh.sidecar`` with the DESIGN.md command line, waited on
until its admin port answers), ``Upstream`` (a threaded loopback HTTP server whose behaviour
per request is a Python function: answer, refuse, reset, hang, close mid-body), and
``http_request`` (a raw-socket HTTP/1.1 client that reports exactly what came back).
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.config.loader import normal_documents
from mesh.meshdir import MeshDir, atomic_write, read_json
from mesh.sidecar.memory_budget import proxy_argv
from mesh.snapshot import Endpoint, Snapshot
from mesh.topology import Service


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def endpoint(pod: str, service: str, port: int, **labels: str) -> Endpoint:
    return Endpoint(pod=pod, service=service, address="127.0.0.1", port=port,
                    labels={"app": service, **labels})  # fmt: skip


def write_snapshot(
    mesh_dir: Path,
    version: int,
    resources: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Endpoint],
    services: Iterable[Service] = (),
) -> None:
    """Publish Istio documents the way the manager does: in normal form, atomically."""
    res = normal_documents(resources)
    eps = tuple(endpoints)
    catalog = tuple(services)
    digest = Snapshot.content_hash(res, eps, catalog)
    snap = Snapshot(version, res, eps, digest, time.time(), catalog)
    write_raw_snapshot(mesh_dir, snap.to_json().encode())


def write_raw_snapshot(mesh_dir: Path, data: bytes) -> None:
    atomic_write(MeshDir(mesh_dir).snapshot_file, data)


def read_status(mesh_dir: Path, pod: str) -> dict[str, Any] | None:
    return read_json(MeshDir(mesh_dir).status_file(pod))


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class SidecarProcess:
    """A ``python -OO -m mesh.sidecar`` child with the DESIGN.md command line."""

    mesh_dir: Path
    pod: str = "test-v1"
    labels: Mapping[str, str] = field(default_factory=lambda: {"app": "test", "version": "v1"})
    app_port: int | None = None
    gateway: bool = False
    extra: list[str] = field(default_factory=list)
    inbound_port: int = field(default_factory=free_port)
    outbound_port: int = field(default_factory=free_port)
    admin_port: int = field(default_factory=free_port)
    access_log: str | None = None
    cpu: int | None = None
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        labels = ",".join(f"{k}={v}" for k, v in self.labels.items())
        cmd = [*proxy_argv(sys.executable), "--pod", self.pod, "--labels", labels,
               "--mesh-dir", str(self.mesh_dir), "--admin-port", str(self.admin_port),
               "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
               "--heartbeat", "0.5", "--seed", "7"]  # fmt: skip
        if self.gateway:
            cmd.append("--gateway")
        else:
            cmd += ["--service", self.labels.get("app", "test"),
                    "--inbound-port", str(self.inbound_port),
                    "--app-port", str(self.app_port or free_port()),
                    "--outbound-port", str(self.outbound_port)]  # fmt: skip
        cmd += ["--access-log", self.access_log or "off"]
        cmd += self.extra
        if self.cpu is not None:
            cmd = ["taskset", "-c", str(self.cpu), *cmd]
        return cmd

    def start(self, wait_ready: bool = False, timeout: float = 10.0) -> SidecarProcess:
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ, PYTHONPATH=str(root) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.proc = subprocess.Popen(self.command(), env=env, cwd=root)
        wait_for(self._admin_up, timeout, f"sidecar {self.pod} admin port")
        if wait_ready:
            wait_for(self.is_ready, timeout, f"sidecar {self.pod} ready")
        return self

    def _admin_up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"sidecar exited with {self.proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", self.admin_port), timeout=0.2):
                return True
        except OSError:
            return False

    def admin(self, path: str) -> tuple[int, bytes]:
        r = http_request("127.0.0.1", self.admin_port, "GET", path)
        return r.status, r.body

    def admin_json(self, path: str) -> Any:
        status, body = self.admin(path)
        assert status == 200, (status, body)
        return json.loads(body)

    def is_ready(self) -> bool:
        try:
            return self.admin("/ready")[0] == 200
        except OSError:
            return False

    def applied_version(self) -> int | None:
        try:
            version = self.admin_json("/config_dump").get("version")
            return int(version) if version is not None else None
        except (OSError, AssertionError, ValueError):
            return None

    def wait_version(self, version: int, timeout: float = 10.0) -> None:
        wait_for(lambda: self.applied_version() == version, timeout, f"version {version}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


def gateway_resource(name: str = "gw", port: int = 8080) -> dict[str, Any]:
    """An Istio Gateway selecting the ingress gateway, one HTTP server for every host."""
    return {"apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway",
            "metadata": {"name": name},
            "spec": {"selector": {"istio": "ingressgateway"},
                     "servers": [{"port": {"number": port, "name": "http", "protocol": "HTTP"},
                                  "hosts": ["*"]}]}}  # fmt: skip


def gateway_process(
    mesh_dir: Path, server_port: int = 8080, extra: Iterable[str] = ()
) -> tuple[SidecarProcess, int]:
    """An ingress gateway (not started) whose server port listens on a free loopback port;
    returns it and that port."""
    listen = free_port()
    gateway = SidecarProcess(mesh_dir, pod="istio-ingressgateway", gateway=True,
                             labels={"istio": "ingressgateway"},
                             extra=["--gateway-port-map", f"{server_port}:{listen}", *extra])  # fmt: skip
    return gateway, listen


# --- a raw HTTP/1.1 client -----------------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    complete: bool = True
    raw_head: bytes = b""


def read_response(sock: socket.socket, method: str = "GET") -> Response:
    """Read one response; ``complete`` is False when the connection ended early."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            if not buf:
                raise ConnectionError("connection closed before a response")
            return Response(0, {}, b"", False, buf)
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        k = k.strip().lower()
        headers[k] = f"{headers[k]}, {v.strip()}" if k in headers else v.strip()
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b"", True, head)
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            data = sock.recv(65536)
            if not data:
                return Response(status, headers, rest, False, head)
            rest += data
        return Response(status, headers, rest[:n], True, head)
    if "chunked" in headers.get("transfer-encoding", ""):
        body = b""
        while True:
            while b"\r\n" not in rest:
                data = sock.recv(65536)
                if not data:
                    return Response(status, headers, body, False, head)
                rest += data
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                data = sock.recv(65536)
                if not data:
                    return Response(status, headers, body + rest, False, head)
                rest += data
            if size == 0:
                return Response(status, headers, body, True, head)
            body += rest[:size]
            rest = rest[size + 2 :]
    while True:
        data = sock.recv(65536)
        if not data:
            return Response(status, headers, rest, True, head)
        rest += data


def http_request(
    host: str,
    port: int,
    method: str = "GET",
    target: str = "/",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 10.0,
) -> Response:
    hdrs = {"host": f"{host}:{port}", "connection": "close"}
    if body:
        hdrs["content-length"] = str(len(body))
    hdrs.update({k.lower(): v for k, v in (headers or {}).items()})
    req = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(req.encode("latin-1") + b"\r\n" + body)
        return read_response(sock, method)


def send_raw(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes, return everything the server sends until it closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return out


# --- a scriptable upstream -----------------------------------------------------------------


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


Behaviour = Callable[[Request], "bytes | str | list[bytes | str] | None"]
"""Given a request: bytes to send raw, "reset" (RST), "close" (FIN, no answer), "hang",
None for a default 200 with a small body, or a list of such steps (bytes, then "hang")."""


def ok(body: bytes = b"ok", status: int = 200, headers: Mapping[str, str] | None = None) -> bytes:
    hdrs = {"content-length": str(len(body)), "content-type": "text/plain", **(headers or {})}
    reason = {200: "OK", 503: "Service Unavailable", 500: "Internal Server Error"}.get(status, "X")
    return (f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
            ).encode() + b"\r\n" + body  # fmt: skip


class Upstream:
    """A threaded keep-alive HTTP/1.1 server on loopback; records every request."""

    def __init__(self, behaviour: Behaviour | None = None, name: str = "up") -> None:
        self.behaviour = behaviour or (lambda req: None)
        self.name = name
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = int(self.sock.getsockname()[1])
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.requests)

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers: dict[str, str] = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = b""
                if "content-length" in headers:
                    n = int(headers["content-length"])
                    while len(buf) < n:
                        data = conn.recv(65536)
                        if not data:
                            return
                        buf += data
                    body, buf = buf[:n], buf[n:]
                elif "chunked" in headers.get("transfer-encoding", ""):
                    while True:
                        while b"\r\n" not in buf:
                            buf += conn.recv(65536)
                        size_line, _, buf = buf.partition(b"\r\n")
                        size = int(size_line, 16)
                        while len(buf) < size + 2:
                            buf += conn.recv(65536)
                        if size == 0:
                            buf = buf[2:]
                            break
                        body += buf[:size]
                        buf = buf[size + 2 :]
                req = Request(method, target, headers, body)
                with self.lock:
                    self.requests.append(req)
                action = self.behaviour(req)
                if isinstance(action, list):  # several steps: e.g. [partial bytes, "hang"]
                    for step in action[:-1]:
                        conn.sendall(step.encode() if isinstance(step, str) else step)
                    action = action[-1]
                if action is None:
                    conn.sendall(ok(f"{self.name} {method} {target}".encode(), 200,
                                    {"x-upstream": self.name}))  # fmt: skip
                elif action == "reset":
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()
                    return
                elif action == "close":
                    conn.close()
                    return
                elif action == "hang":
                    time.sleep(30)
                    return
                elif isinstance(action, bytes):
                    conn.sendall(action)
                    if b"connection: close" in action.lower():
                        conn.close()
                        return
                else:
                    raise ValueError(action)
        except OSError:
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass


# --- workload certificates for tests (the agent's part, in-process) -------------------------


def write_secrets(
    secrets_dir: Path,
    ca: Any,
    namespace: str,
    service_account: str,
    *,
    generation: int = 1,
    ttl: float = 3600.0,
    now: float | None = None,
    key_pem: bytes | None = None,
    chain_pem: bytes | None = None,
    root_pem: bytes | None = None,
    swap: bool = True,
) -> Path:
    """Write one generation of a pod's secrets directory as the agent does (the contract in
    DESIGN.md "Security"): ``..gen-<n>/`` with ``key.pem``, ``cert-chain.pem``,
    ``root-cert.pem``, ``meta.json``, then ``current`` swapped to it atomically. ``ca`` is a
    ``mesh.security.ca.MeshCA``; ``key_pem`` / ``chain_pem`` / ``root_pem`` replace what it
    would issue (bad-input tests). Imports ``cryptography`` (tests only)."""
    from datetime import UTC, datetime, timedelta

    from mesh.security.certs import make_csr, new_private_key, private_key_pem
    from mesh.security.identity import Identity

    identity = Identity(namespace, service_account)
    moment = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    key = new_private_key()
    issued = ca.sign(make_csr(key, identity), identity, moment, timedelta(seconds=ttl))
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    gen = secrets_dir / f"..gen-{generation}"
    gen.mkdir(mode=0o700, exist_ok=True)
    files = {
        "key.pem": key_pem if key_pem is not None else private_key_pem(key),
        "cert-chain.pem": chain_pem if chain_pem is not None else issued.cert_chain_pem,
        "root-cert.pem": root_pem if root_pem is not None else issued.root_cert_pem,
        "meta.json": json.dumps(
            {
                "identity": identity.uri,
                "not_before": issued.not_before.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "not_after": issued.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "renew_at": (
                    issued.not_before + (issued.not_after - issued.not_before) / 2
                ).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "serial": "",
            }
        ).encode(),
    }
    for name, data in files.items():
        path = gen / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    if swap:
        tmp = secrets_dir / f".current-{generation}"
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(gen.name)
        os.replace(tmp, secrets_dir / "current")
    return gen
