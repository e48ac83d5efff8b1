"""What the first bytes of a connection say, for ``meshctl tap`` (pure: bytes in, text out).

``read_wire(data)`` → ``WireView``: ``tls`` (a TLS record: 0x16 handshake, version 0x03xx —
Envoy's ``tls_inspector`` test), with the ClientHello's cleartext fields a trainee can see on
the wire even though everything after is encrypted — the SNI (Istio's
``outbound_.<port>_.<subset>_.<host>``), the ALPN list (``istio-peer-exchange``, ``istio``...),
the offered versions; ``http`` (a plaintext request line and its headers, readable by anyone
on the path); or ``other``. ``printable(data)`` shows bytes as ``tcpdump -A`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

HTTP_METHODS: tuple[bytes, ...] = (
    b"GET ", b"POST ", b"PUT ", b"DELETE ", b"HEAD ", b"OPTIONS ", b"PATCH ", b"CONNECT ",
    b"TRACE ", b"PRI * HTTP/2",
)  # fmt: skip
_VERSIONS = {0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2", 0x0304: "TLS 1.3"}


@dataclass(frozen=True, slots=True)
class WireView:
    kind: str  # "tls", "http", "empty", "other"
    summary: str
    sni: str | None = None
    alpn: tuple[str, ...] = ()
    versions: tuple[str, ...] = field(default_factory=tuple)


def printable(data: bytes, limit: int = 80) -> str:
    """Bytes as ``tcpdump -A`` shows them: printable ASCII kept, everything else a dot."""
    return "".join(chr(b) if 32 <= b < 127 else "." for b in data[:limit])


def read_wire(data: bytes) -> WireView:
    if not data:
        return WireView("empty", "no bytes (the client sent nothing before the peek)")
    if len(data) >= 3 and data[0] == 0x16 and data[1] == 0x03:
        return _tls(data)
    if data.startswith(HTTP_METHODS):
        line = data.split(b"\r\n", 1)[0]
        return WireView(
            "http",
            f"PLAINTEXT HTTP, readable by anyone on the path: {printable(line, 120)}",
        )
    return WireView("other", f"unrecognised bytes (not TLS, not HTTP/1): {printable(data, 40)}")


def _tls(data: bytes) -> WireView:
    sni: str | None = None
    alpn: list[str] = []
    versions: list[str] = []
    try:
        # Record header (5) → handshake header (4): type 1 is ClientHello.
        if data[5] != 1:
            return WireView("tls", "TLS handshake (not a ClientHello): encrypted from here on")
        pos = 9
        legacy = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2 + 32  # version, random
        pos += 1 + data[pos]  # session id
        pos += 2 + int.from_bytes(data[pos : pos + 2], "big")  # cipher suites
        pos += 1 + data[pos]  # compression methods
        end = pos + 2 + int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        while pos + 4 <= min(end, len(data)):
            kind = int.from_bytes(data[pos : pos + 2], "big")
            size = int.from_bytes(data[pos + 2 : pos + 4], "big")
            body = data[pos + 4 : pos + 4 + size]
            pos += 4 + size
            if kind == 0 and len(body) >= 5:  # server_name: list length, type 0, name length
                sni = body[5 : 5 + int.from_bytes(body[3:5], "big")].decode("ascii", "replace")
            elif kind == 16 and len(body) >= 2:  # ALPN: list length, then length-prefixed names
                i = 2
                while i < len(body):
                    n = body[i]
                    alpn.append(body[i + 1 : i + 1 + n].decode("ascii", "replace"))
                    i += 1 + n
            elif kind == 43 and body:  # supported_versions
                versions += [
                    _VERSIONS.get(int.from_bytes(body[i : i + 2], "big"), "")
                    for i in range(1, 1 + body[0], 2)
                ]
        if not versions:
            versions.append(_VERSIONS.get(legacy, f"0x{legacy:04x}"))
    except IndexError:
        pass  # the peek ended inside the ClientHello: what was read is shown
    parts = ["TLS ClientHello: the rest of the connection is encrypted"]
    if sni:
        parts.append(f"SNI {sni}")
    if alpn:
        parts.append(f"ALPN {', '.join(alpn)}")
    offered = tuple(v for v in versions if v)
    if offered:
        parts.append(f"offers {', '.join(offered)}")
    return WireView("tls", "; ".join(parts), sni, tuple(alpn), offered)
