"""What the proxy sends upstream besides the client's bytes: the request head it writes, the
header lines it adds (x-request-id, x-forwarded-for; at the ingress gateway Envoy's edge
hygiene), Istio's header operations on header lists, and a route's local reply.

Primitives: ``edge_headers`` / ``added_headers`` (lines to add, per listener kind),
``request_lines`` (the forwarded header lines after a route's header operations),
``request_head``, ``upstream_authority``, ``apply_ops``, ``local_reply``.
"""

from __future__ import annotations

from mesh.routing.decision import Forward, HeaderOps, LocalReply, RequestView
from mesh.sidecar.http1.exchange import Exchange
from mesh.sidecar.http1.framing import CHUNKED, LENGTH
from mesh.sidecar.request_id import new_request_id
from mesh.telemetry.istio import PEER_HEADERS

# Request headers an edge proxy does not take from a client outside the mesh: Envoy's
# ``cleanInternalHeaders`` for an edge request (``use_remote_address``, a client that is not
# internal: with ``internal_address_config`` unset, no client is, as in Envoy since 1.36 and
# in Istio's ingress gateway), plus x-envoy-internal, which every listener strips.
EDGE_STRIPPED: frozenset[str] = frozenset(
    {
        "x-envoy-internal",
        "x-envoy-decorator-operation",
        "x-envoy-downstream-service-cluster",
        "x-envoy-downstream-service-node",
        "x-envoy-retriable-status-codes",
        "x-envoy-retriable-header-names",
        "x-envoy-retry-on",
        "x-envoy-retry-grpc-on",
        "x-envoy-max-retries",
        "x-envoy-upstream-alt-stat-name",
        "x-envoy-upstream-rq-timeout-ms",
        "x-envoy-upstream-rq-per-try-timeout-ms",
        "x-envoy-upstream-rq-timeout-alt-response",
        "x-envoy-expected-rq-timeout-ms",
        "x-envoy-force-trace",
        "x-envoy-ip-tags",
        "x-envoy-original-url",
        "x-envoy-hedge-on-per-try-timeout",
    }
)
# Set by the edge proxy itself, whatever the client sent: a new request id for every edge
# request (Istio leaves preserve_external_request_id off), the scheme it was received on,
# and the client's address.
_EDGE_REPLACED: frozenset[str] = EDGE_STRIPPED | {
    # Istio's metadata exchange: only the gateway itself speaks for the caller.
    *PEER_HEADERS,
    # Istio's gateway: SANITIZE_SET, and its clients present no certificate: removed.
    "x-forwarded-client-cert",
    "x-request-id",
    "x-forwarded-proto",
    "x-envoy-external-address",
}


def edge_headers(ex: Exchange) -> list[bytes]:
    """The ingress gateway's header hygiene (Istio: ``use_remote_address: true``, no trusted
    hops): the client's internal-only headers out (before routing sees them), a fresh
    ``x-request-id``, ``x-forwarded-proto``, the client appended to ``x-forwarded-for`` and
    named in ``x-envoy-external-address``. Returns the header lines to add upstream."""
    hdict = ex.hdict
    gone = [name for name in hdict if name in _EDGE_REPLACED]
    if gone:
        names = {name.encode("latin-1") for name in gone}
        ex.headers = [(n, v) for n, v in ex.headers if n not in names]
        hdict = ex.hdict = {k: v for k, v in hdict.items() if k not in gone}
    request_id = ex.request_id = new_request_id()
    hdict["x-request-id"] = request_id
    peer = ex.conn.peer
    return [
        b"x-request-id: " + request_id.encode() + b"\r\n",
        forwarded_for(ex),
        b"x-forwarded-proto: http\r\n",
        b"x-envoy-external-address: " + peer.encode("latin-1") + b"\r\n",
    ]


def added_headers(ex: Exchange, xff: bool) -> list[bytes]:
    """Header lines the proxy adds upstream: ``x-request-id`` when the client sent none, and
    (``xff``: inbound and gateway listeners) the client's address on ``x-forwarded-for``."""
    extra: list[bytes] = []
    if "x-request-id" not in ex.hdict:
        ex.request_id = new_request_id()
        extra.append(b"x-request-id: " + ex.request_id.encode() + b"\r\n")
    if xff:
        extra.append(forwarded_for(ex))
    return extra


def forwarded_for(ex: Exchange) -> bytes:
    prior = ex.hdict.get("x-forwarded-for")
    value = f"{prior}, {ex.conn.peer}" if prior else ex.conn.peer
    # The header is re-emitted here, so the original line must not be forwarded too.
    ex.headers = [(n, v) for n, v in ex.headers if n != b"x-forwarded-for"]
    return b"x-forwarded-for: " + value.encode("latin-1") + b"\r\n"


def local_reply(ex: Exchange, reply: LocalReply) -> None:
    headers = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in reply.headers]
    if reply.response_headers:
        headers = apply_ops(headers, reply.response_headers)
    ex.reply(reply.status, reply.body, reply.flag, headers)


def upstream_authority(ex: Exchange, view: RequestView, fwd: Forward) -> str:
    """The Host to send: as the client sent it (port included, as Envoy does) unless the
    route rewrote the authority."""
    if fwd.authority == view.host or fwd.authority.lower() == view.host.lower():
        return ex.authority or fwd.authority
    return fwd.authority


def request_head(
    ex: Exchange,
    method: str,
    path: str,
    authority: str,
    lines: list[bytes],
    framing: int | None = None,
) -> bytes:
    """The upstream request head; the body keeps the client's framing unless ``framing``
    says otherwise (a mirror copy is sent whole, with its own length line in ``lines``)."""
    if framing is None:
        framing = ex.req_framing
    if framing == LENGTH:
        # The length llhttp framed the body by, written plainly ("005" is 5).
        lines.append(b"content-length: %d\r\n" % int(ex.hdict.get("content-length", "0")))
    elif framing == CHUNKED:
        lines.append(b"transfer-encoding: chunked\r\n")
    return b"".join(
        [
            f"{method} {path} HTTP/1.1\r\nhost: {authority}\r\n".encode("latin-1"),
            *lines,
            b"\r\n",
        ]
    )


def apply_ops(pairs: list[tuple[bytes, bytes]], ops: HeaderOps) -> list[tuple[bytes, bytes]]:
    """Istio header operations on a header list: set (replace), add (comma-append to an
    existing value, as ``HeaderOps.apply``), remove."""
    out = list(pairs)
    for name, value in ops.set:
        n = name.lower().encode("latin-1")
        out = [(k, v) for k, v in out if k != n]
        out.append((n, value.encode("latin-1")))
    for name, value in ops.add:
        n = name.lower().encode("latin-1")
        for i in range(len(out) - 1, -1, -1):
            if out[i][0] == n:
                out[i] = (n, out[i][1] + b"," + value.encode("latin-1"))
                break
        else:
            out.append((n, value.encode("latin-1")))
    if ops.remove:
        gone = {name.lower().encode("latin-1") for name in ops.remove}
        out = [(k, v) for k, v in out if k not in gone]
    return out


def request_lines(ex: Exchange, ops: HeaderOps, extra: list[bytes]) -> list[bytes]:
    if not ops:
        return ex.upstream_headers(extra)
    pairs = apply_ops(
        [(n, v) for n, v in ex.headers],
        HeaderOps(
            tuple((n, v) for n, v in ops.set if n.lower() not in ("host", ":authority")),
            tuple((n, v) for n, v in ops.add if n.lower() not in ("host", ":authority")),
            ops.remove,
        ),
    )
    saved = ex.headers
    ex.headers = pairs
    try:
        return ex.upstream_headers(extra)
    finally:
        ex.headers = saved
