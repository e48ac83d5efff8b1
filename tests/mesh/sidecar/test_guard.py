"""The proxy's security wiring (``mesh.sidecar.guard``)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from mesh.config.loader import normal_documents
from mesh.routing import ProxyIdentity, compile_snapshot
from mesh.sidecar.guard import Guard, tap_recorder
from mesh.snapshot import Snapshot


def options(**kw: Any) -> Any:
    base = dict(pod="p", labels={"app": "a"}, namespace="foo", service_account="sa",
                gateway=False, plain=False, inbound_port=9080, secrets_dir=None,
                bind_address="127.0.0.1", header_timeout=10, service_name="a")  # fmt: skip
    return SimpleNamespace(**(base | kw))


def runtime() -> Any:
    return SimpleNamespace(pool=SimpleNamespace(security=None), security=None)


PA = {"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
      "metadata": {"name": "default", "namespace": "istio-system"},
      "spec": {"mtls": {"mode": "STRICT"}}}  # fmt: skip


def test_a_plain_mesh_loads_nothing() -> None:
    loop = asyncio.new_event_loop()
    try:
        guard = Guard(options(), loop, runtime(), lambda: None)
        assert not guard.wants(())
        assert guard.security is None and guard.status_fields() == {}
        assert guard.certs() == {"identity": None} and guard.prometheus() == []
        assert guard.wants(normal_documents([PA]))  # policies: loaded
        assert not Guard(options(plain=True), loop, runtime(), lambda: None).wants(
            normal_documents([PA])
        )
    finally:
        loop.close()


def test_strict_without_identity_refuses_the_inbound_listener() -> None:
    loop = asyncio.new_event_loop()
    try:
        rt = runtime()
        guard = Guard(options(), loop, rt, lambda: None)
        listener = SimpleNamespace(refusing=False, conns=set())
        assert guard.bind_inbound(listener, None, None) is False  # no identity: plain bind
        snap = Snapshot(1, normal_documents([PA]), ())
        table = compile_snapshot(snap, ProxyIdentity("p", {"app": "a"}, False, "foo"))
        guard.install(table, guard.prepare(table))
        assert listener.refusing is True
        assert rt.security is guard.security and rt.pool.security is guard.security
        assert guard.status_fields()["mtls_mode"].startswith("STRICT (no certificate")
    finally:
        loop.close()


def test_tap_recorder_is_optional() -> None:
    recorder = tap_recorder()
    assert recorder is None or callable(recorder)


class _Conn:
    def __init__(self, tls: Any, active: Any = None) -> None:
        self.tls = tls
        self.active = active
        self.closed = False
        self.transport = SimpleNamespace(close=lambda: setattr(self, "closed_by_drain", True))

    def uncork(self) -> None:
        pass


def test_drain_ends_what_the_new_mode_refuses() -> None:
    from mesh.sidecar.guard import drain

    idle_plain, busy_plain, tls = (
        _Conn(None),
        _Conn(None, SimpleNamespace(keep_alive=True)),
        _Conn("peer"),
    )
    assert drain([idle_plain, busy_plain, tls], "PERMISSIVE") == 0
    assert drain([idle_plain, busy_plain, tls], "STRICT") == 2
    assert idle_plain.closed and getattr(idle_plain, "closed_by_drain", False)
    assert busy_plain.active.keep_alive is False and not busy_plain.closed  # after its exchange
    assert not tls.closed
    assert drain([tls], "DISABLE") == 1 and tls.closed
