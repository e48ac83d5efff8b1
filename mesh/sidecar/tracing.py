"""Traces as Envoy's Zipkin tracer makes them: b3 context in, spans out, off the hot path.

Primitive: ``Tracer``, one per proxy.

- ``outbound(ex)`` (the outbound listener and the gateway): the request's b3 context
  (what the app propagated; none: a new trace, sampled at ``sampling`` %), a child context
  for this hop's CLIENT span, and the header lines that carry it upstream (the incoming b3
  headers are replaced, as Envoy does);
- ``inbound(ex)`` (the inbound listener): the SERVER span shares the caller's client span id
  (Envoy's ``shared_span_context``); a request without a context starts a trace here and the
  app gets its headers;
- ``finished(ex, reporter, ms)`` (from telemetry, per sampled request, once its response is
  written): the span as Zipkin v2 JSON text (``encode``: one f-string of the request's ids,
  times and sizes around the span's repeating part, cached per request shape), handed to the
  ``SpanSender``, whose own task sends the batch to the collector. A full queue drops spans
  (counted), never a request.

Sampling: ``PILOT_TRACE_SAMPLING`` (percent, 0-100, Istio's pilot knob of the same name;
default 100 in the lab). ``MESH_TELEMETRY=off`` turns metrics and traces off altogether (the
benchmark's baseline).
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mesh.telemetry import b3, zipkin
from mesh.telemetry.b3 import TraceContext

if TYPE_CHECKING:
    from mesh.routing.decision import Forward
    from mesh.sidecar.http1.exchange import Exchange
    from mesh.spansender import SpanSender

ENV_SAMPLING = "PILOT_TRACE_SAMPLING"
ENV_TELEMETRY = "MESH_TELEMETRY"
DEFAULT_SAMPLING = 100.0
_json_str = json.encoder.encode_basestring
# A float's integer part, for the span's microseconds (``int()`` of a positive float, at a
# third less: no argument tuple made per call).
_floor = math.floor
NO_FLAGS = '"-"'
_ERROR = ',"error":"true"'
# A span's closing braces by (debug, shared).
_ENDS = (("}}", '},"shared":true}'), ('},"debug":true}', '},"debug":true,"shared":true}'))
B3_BYTES = frozenset(h.encode("latin-1") for h in b3.HEADERS)
_TRACE_ID = b3.TRACE_ID
_SINGLE = b3.SINGLE


def sampling_from_env(environ: Mapping[str, str] | None = None) -> float:
    """``PILOT_TRACE_SAMPLING`` as a percentage in [0, 100]; the lab's 100 when unset or bad."""
    raw = (environ if environ is not None else os.environ).get(ENV_SAMPLING, "").strip()
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_SAMPLING
    return min(100.0, max(0.0, value)) if value == value else DEFAULT_SAMPLING


def telemetry_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when ``MESH_TELEMETRY`` is ``off`` (or ``0``/``false``)."""
    raw = (environ if environ is not None else os.environ).get(ENV_TELEMETRY, "on")
    return raw.strip().lower() not in ("off", "0", "false", "no")


def context_lines(ctx: TraceContext) -> list[bytes]:
    """The multi-header b3 form Envoy sends upstream, as one chunk of header lines."""
    text = f"x-b3-traceid: {ctx.trace_id}\r\nx-b3-spanid: {ctx.span_id}\r\n"
    if ctx.parent_id:
        text += f"x-b3-parentspanid: {ctx.parent_id}\r\n"
    if ctx.debug:
        text += "x-b3-flags: 1\r\n"
    elif ctx.sampled is not None:
        text += "x-b3-sampled: 1\r\n" if ctx.sampled else "x-b3-sampled: 0\r\n"
    return [text.encode()]


def strip_b3(ex: Exchange) -> None:
    """Drop the request's b3 headers (this proxy sends its own)."""
    ex.headers = [(n, v) for n, v in ex.headers if n not in B3_BYTES]


class Tracer:
    """b3 in, spans out, for one proxy."""

    def __init__(
        self,
        proxy: zipkin.ProxyInfo,
        sender: SpanSender | None,
        rng: random.Random,
        *,
        sampling: float = DEFAULT_SAMPLING,
        inbound_name: str = "",
    ) -> None:
        self.proxy = proxy
        self.sender = sender
        self.rng = rng
        self.sampling = sampling
        # The inbound listener's span name (Istio's decorator for the pod's own service).
        self.inbound_name = inbound_name
        # Spans are recorded only when there is a collector to send them to; the context
        # is propagated either way.
        self.records = sender is not None
        self.malformed = 0
        self._names: dict[tuple[str, int], str] = {}
        self._bits = rng.getrandbits
        # Monotonic -> epoch microseconds (spans carry wall-clock start times).
        self._offset = time.time() - time.monotonic()
        # What every span of this proxy says the same way, JSON-encoded once.
        self._inbound_head = f',"name":{_json_str(inbound_name.lower())},"kind":"SERVER"'
        self._fragments: dict[tuple[Any, ...], str] = {}
        self._last: tuple[tuple[Any, ...] | None, str] = (None, "")
        self._local = json.dumps(proxy.endpoint().to_json(), separators=(",", ":"))
        self._node = _json_str(proxy.node_id)
        # After the duration, before the URL: the same for every span of this proxy.
        self._tags = (
            f',"localEndpoint":{self._local},"tags":{{"component":"proxy",'
            f'"node_id":{self._node},"http.url":'
        )
        self._istio = (
            f',"istio.canonical_service":{_json_str(proxy.canonical_service)},'
            f'"istio.canonical_revision":{_json_str(proxy.canonical_revision)},'
            f'"istio.namespace":{_json_str(proxy.namespace)},'
            f'"istio.mesh_id":{_json_str(zipkin.MESH_ID)}'
        )

    def name_inbound(self, name: str) -> None:
        """Name the SERVER spans ``name`` from now on (the Service port's decorator, known
        once the snapshot's service catalog is)."""
        if name != self.inbound_name:
            self.inbound_name = name
            self._inbound_head = f',"name":{_json_str(name.lower())},"kind":"SERVER"'
            self._fragments.clear()  # their heads carry the old name
            self._last = (None, "")

    # --- the request path ---------------------------------------------------------------

    def _incoming(self, ex: Exchange) -> TraceContext | None:
        hdict = ex.hdict
        if b3.TRACE_ID not in hdict and b3.SINGLE not in hdict:
            return None
        try:
            return b3.parse(hdict)
        except b3.B3Error:
            # A broken context is no context: a new trace, and the bad headers go.
            self.malformed += 1
            strip_b3(ex)
            return None

    def _sample(self) -> bool:
        sampling = self.sampling
        return sampling >= 100.0 or (sampling > 0.0 and self.rng.random() * 100.0 < sampling)

    def _new_id(self) -> str:
        # 64 random bits, never all zeros (b3.random_id's rule, without its loop), as 16
        # lowercase hex digits: ``to_bytes(8).hex()`` is ``f"{bits:016x}"`` at half the cost
        # (no format spec parsed per id).
        return (self._bits(64) or 1).to_bytes(8).hex()

    def outbound(self, ex: Exchange) -> list[bytes]:
        """The CLIENT span's context for ``ex`` (``ex.trace``, when sampled and recorded:
        ``(trace id, span id, parent id, debug)``) and the header lines that carry it
        upstream: a child of the app's context, or a new trace."""
        # 64 random bits, never all zeros, as 16 hex digits (``_new_id``, inline).
        span_id = (self._bits(64) or 1).to_bytes(8).hex()
        hdict = ex.hdict
        if _TRACE_ID not in hdict and _SINGLE not in hdict:
            # The common case, inline: no context from the app, a new trace.
            sampling = self.sampling
            if sampling >= 100.0 or (sampling > 0.0 and self.rng.random() * 100.0 < sampling):
                if self.records:
                    ex.trace = (span_id, span_id, None, False)
                # Hex ids and ASCII names: the default (UTF-8) codec gives latin-1's bytes,
                # without a codec looked up by name per request.
                return [
                    f"x-b3-traceid: {span_id}\r\nx-b3-spanid: {span_id}\r\n"
                    "x-b3-sampled: 1\r\n".encode()
                ]
            return [
                f"x-b3-traceid: {span_id}\r\nx-b3-spanid: {span_id}\r\nx-b3-sampled: 0\r\n".encode()
            ]
        ctx = self._incoming(ex)
        if ctx is None:
            trace_id, parent, debug = span_id, None, False
            sampled = self._sample()
            text = f"x-b3-traceid: {span_id}\r\nx-b3-spanid: {span_id}\r\n"
        else:
            strip_b3(ex)
            trace_id, parent, debug = ctx.trace_id, ctx.span_id, ctx.debug
            sampled = debug or (ctx.sampled if ctx.sampled is not None else self._sample())
            text = (
                f"x-b3-traceid: {trace_id}\r\nx-b3-spanid: {span_id}\r\n"
                f"x-b3-parentspanid: {parent}\r\n"
            )
        if debug:
            text += "x-b3-flags: 1\r\n"
        else:
            text += "x-b3-sampled: 1\r\n" if sampled else "x-b3-sampled: 0\r\n"
        if sampled and self.records:
            ex.trace = (trace_id, span_id, parent, debug)
        return [text.encode()]

    def inbound(self, ex: Exchange) -> list[bytes]:
        """The SERVER span's context (the caller's, shared); header lines for the app only
        when the trace starts here or the caller left the decision to us."""
        ctx = self._incoming(ex)
        lines: list[bytes] = []
        if ctx is None:
            root = self._new_id()
            ctx = TraceContext(root, root, None, self._sample())
            lines = context_lines(ctx)
            ex.trace_root = True
        elif ctx.sampled is None and not ctx.debug:
            ctx = TraceContext(ctx.trace_id, ctx.span_id, ctx.parent_id, self._sample())
            if b3.SINGLE not in ex.hdict:
                lines = [b"x-b3-sampled: " + (b"1" if ctx.sampled else b"0") + b"\r\n"]
        if self.records and ctx.recorded:
            ex.trace = (ctx.trace_id, ctx.span_id, ctx.parent_id, ctx.debug)
        return lines

    def finished(self, ex: Exchange, reporter: str, ms: float) -> None:
        """A sampled request ended, its response already written: its span's text handed to
        the sender (``encode``). A full queue drops it (the sender counts)."""
        sender = self.sender
        if sender is not None:
            sender.submit(self.encode(ex, reporter, ms))

    def encode(self, ex: Exchange, reporter: str, ms: float) -> str:
        """The span of ``ex`` as Zipkin v2 JSON: the members of ``span.to_json()`` for the
        span ``zipkin.client_span``/``server_span`` make from the same values (the unit tests
        check it member for member), written as one f-string, since a Span object and a dict
        per request would cost more than the rest of the proxy's telemetry together. The
        part that repeats from request to request (the span's name and kind, the local
        endpoint, the client's method and agent, the upstream, the route, the URL, the
        status) is found encoded in the cache by what it is made of (``_fragment`` encodes it
        once per distinct shape); only this request's ids, times, sizes and request id are
        formatted. The text is all the sender keeps (nothing of the exchange waits for the
        report)."""
        hget = ex.hdict.get
        route = ex.route
        authority = ex.authority or hget("host") or ""
        # The upstream's host and port (the CLIENT span's name) are not in the key: the
        # cluster's name says them (``outbound|<port>|<subset>|<host>``), or, unrouted, the
        # authority does (``_fragment`` reads them on a miss).
        key = (
            reporter, ex.method, ex.http11, hget("x-envoy-downstream-service-cluster"),
            hget("user-agent"), ex.conn.peer, ex.cluster_name, ex.upstream_host,
            route.route_name if route is not None else None, authority, ex.url, ex.status,
            ex.flags,
        )  # fmt: skip
        # The last span's shape first: consecutive spans mostly share it, and comparing two
        # keys costs a fraction of hashing one (its URL, agent and authority are fresh
        # strings, their hashes not cached).
        last = self._last
        fixed: str | None = last[1] if key == last[0] else None
        if fixed is None:
            fixed = self._fragments.get(key) or self._fragment(key, route)
            self._last = (key, fixed)
        trace_id, span_id, parent_id, debug = ex.trace
        # The closing braces, with ``debug`` / ``shared`` (a SERVER span shares the caller's
        # span id unless the trace started here).
        end = _ENDS[debug][reporter == "destination" and not ex.trace_root]
        parent = f',"parentId":"{parent_id}"' if parent_id else ""
        # The request id: this proxy's own (``new_request_id``: hex digits and dashes, JSON as
        # it is), else the caller's header (any text, escaped).
        rid = ex.request_id
        if not rid:
            caller_id = hget("x-request-id")
            if not caller_id:
                # No request id at all (a caller's empty header): the same span without the
                # tag. Its own copy of the f-string, since one f-string with the tag's text
                # as a variable costs every span ~400 instructions more (callgrind).
                return (
                    f'{{"traceId":"{trace_id}","id":"{span_id}"{parent},"timestamp":'
                    f"{_floor((ex.start + self._offset) * 1_000_000)}"
                    f',"duration":{_floor(ms * 1000) or 1}{fixed}'
                    f'{ex.bytes_in}","response_size":"{ex.bytes_out}"{end}'
                )
            rid = _json_str(caller_id)[1:-1]
        # The per-request values first and last, the cached ``fixed`` part between them:
        # JSON's members in any order are the same span (Zipkin reads them by name), and
        # this order makes one string of everything that repeats.
        return (
            f'{{"traceId":"{trace_id}","id":"{span_id}"{parent},"timestamp":'
            f"{_floor((ex.start + self._offset) * 1_000_000)}"
            f',"duration":{_floor(ms * 1000) or 1}{fixed}'
            f'{ex.bytes_in}","response_size":"{ex.bytes_out}","guid:x-request-id":"{rid}"{end}'
        )

    def _name(self, host: str, port: int) -> str:
        """A span name, JSON-encoded, cached per upstream host and port."""
        key = (host, port)
        name = self._names.get(key)
        if name is None:
            if len(self._names) > 1024:
                self._names.clear()
            name = self._names[key] = _json_str(zipkin.operation_name(host, port).lower())
        return name

    def _url(self, authority: str, target: bytes) -> str:
        """Envoy's ``http.url`` tag, JSON-encoded (made once per fragment, ``_fragment``)."""
        text = target.decode("latin-1")
        if text[:1] == "/":
            path = text
        else:  # the absolute form an app sends its proxy: the path is after the authority
            rest = text.split("://", 1)[-1]
            cut = rest.find("/")
            path = rest[cut:] if cut >= 0 else "/"
        return _json_str(zipkin.http_url("http", authority, path))

    def _fragment(self, key: tuple[Any, ...], route: Forward | None) -> str:
        """The part of a span that repeats from request to request, encoded once per
        distinct ``key`` (bounded): the name and kind, the local endpoint, and the tags but
        the sizes and the request id (the fixed tags, the URL, the method, protocol,
        downstream cluster and user agent; the status, flags and Istio's tags; the peer,
        upstream and route tags and the error tag), up to the request size's value. A CLIENT
        span is named for ``route``'s cluster (unrouted: the authority's host, port 80)."""
        (reporter, method, http11, downstream, agent, peer, cluster, upstream, route_name,
         authority, url, status, flags) = key  # fmt: skip
        if reporter == "destination":
            head = self._inbound_head
        else:
            if route is not None:
                host, port = route.cluster.host, route.cluster.port
            else:
                host, port = authority.rsplit(":", 1)[0] or "unknown", 80
            head = f',"name":{self._name(host, port)},"kind":"CLIENT"'
        parts = [
            head,
            self._tags,
            self._url(authority, url),
            f',"http.method":{_json_str(method)},'
            f'"http.protocol":"{"HTTP/1.1" if http11 else "HTTP/1.0"}",'
            f'"downstream_cluster":{_json_str(downstream or "-")},'
            f'"user_agent":{_json_str(agent or "-")},'
            f'"http.status_code":"{status}",'
            f'"response_flags":{_json_str(flags) if flags else NO_FLAGS}{self._istio}',
        ]
        if peer:
            parts.append(f',"peer.address":{_json_str(peer)}')
        if cluster:
            parts.append(f',"upstream_cluster":{_json_str(cluster)}')
        if upstream:
            parts.append(f',"upstream_address":{_json_str(upstream)}')
        if route_name:
            parts.append(f',"route_name":{_json_str(route_name)}')
        if status == 0 or 500 <= status <= 599:
            parts.append(_ERROR)
        parts.append(',"request_size":"')
        if len(self._fragments) >= 4096:  # bounded whatever the traffic
            self._fragments.clear()
        fixed = self._fragments[key] = "".join(parts)
        return fixed


def make_tracer(
    app: str,
    service: str,
    namespace: str,
    pod: str,
    version: str | None,
    address: str,
    inbound_port: int | None,
    gateway: bool,
    sender: SpanSender | None,
    rng: random.Random,
) -> Tracer:
    """A proxy's tracer: Istio's tracing service name ``<app>.<namespace>``, the inbound span
    named by Istio's decorator for the pod's own service, sampling from the environment."""
    proxy = zipkin.ProxyInfo.of(
        app, namespace, pod, version=version, ipv4=address if _is_ipv4(address) else None,
        port=inbound_port, gateway=gateway,
    )  # fmt: skip
    inbound = zipkin.operation_name(f"{service}.{namespace}.svc.cluster.local", inbound_port or 0)
    return Tracer(proxy, sender, rng, sampling=sampling_from_env(), inbound_name=inbound)


def _is_ipv4(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET, text)
    except OSError:
        return False
    return True
