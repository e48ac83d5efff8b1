"""The first bytes of a connection, read as meshctl tap shows them: a real ClientHello (made
by this Python's ssl) shows its SNI and ALPN in clear; plaintext HTTP shows its request."""

from __future__ import annotations

from mesh.security.wire import printable, read_wire
from tests.helpers import client_hello


def test_a_client_hello_shows_istio_s_sni_and_alpn() -> None:
    sni = "outbound_.8000_._.httpbin.foo.svc.cluster.local"
    view = read_wire(client_hello(sni, ["istio-peer-exchange", "istio"]))
    assert view.kind == "tls"
    assert view.sni == sni
    assert view.alpn == ("istio-peer-exchange", "istio")
    assert "TLS 1.3" in view.versions
    assert "encrypted" in view.summary and sni in view.summary


def test_a_truncated_client_hello_still_reads_as_tls() -> None:
    view = read_wire(client_hello("x.example", [])[:20])
    assert view.kind == "tls" and view.sni is None


def test_plaintext_http_is_readable() -> None:
    view = read_wire(b"GET /headers HTTP/1.1\r\nHost: httpbin.foo:8000\r\n\r\n")
    assert view.kind == "http"
    assert "GET /headers HTTP/1.1" in view.summary and "PLAINTEXT" in view.summary


def test_other_and_empty() -> None:
    assert read_wire(b"").kind == "empty"
    assert read_wire(b"\x00\x01garbage").kind == "other"
    assert printable(b"a\x00b\r\n") == "a.b.."
