"""The proxy's b3 handling and span shapes, from plain values (no sockets, no clock)."""

from __future__ import annotations

import json
import random
from typing import Any

from mesh.sidecar.request_id import new_request_id
from mesh.sidecar.tracing import Tracer, sampling_from_env, telemetry_enabled
from mesh.spansender import span_text
from mesh.telemetry import zipkin
from mesh.telemetry.b3 import TraceContext
from tests.helpers import make_downstream

TRACE = "463ac35c9f6413ad"
SPAN = "a2fb4a1d1a96d312"
OWN = object()  # a request id this proxy made
PROXY = zipkin.ProxyInfo.of("reviews", "default", "reviews-v2-1", version="v2", ipv4="10.0.0.7")


class Sender:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def submit(self, span: Any) -> bool:
        self.texts.append(span_text(span))  # what the sender's report carries
        return True

    @property
    def spans(self) -> list[zipkin.Span]:
        """What the collector would make of them (its strict parser)."""
        return zipkin.parse_spans(json.loads("[" + ",".join(self.texts) + "]"))


def request(headers: bytes = b"", target: bytes = b"http://ratings:9080/ratings/0"):  # type: ignore[no-untyped-def]
    pending = []
    conn, _, _, _ = make_downstream(lambda ex: pending.append(ex))
    conn.data_received(
        b"GET " + target + b" HTTP/1.1\r\nhost: ratings:9080\r\nuser-agent: t\r\n"
        b"x-request-id: rid-1\r\n" + headers + b"\r\n"
    )
    return pending[0]


def tracer(sampling: float = 100.0) -> tuple[Tracer, Sender]:
    sender = Sender()
    t = Tracer(PROXY, sender, random.Random(7), sampling=sampling,  # type: ignore[arg-type]
               inbound_name="reviews.default.svc.cluster.local:9080/*")  # fmt: skip
    return t, sender


def lines_dict(lines: list[bytes]) -> dict[str, str]:
    out = {}
    for line in b"".join(lines).decode().splitlines():
        name, _, value = line.partition(": ")
        out[name] = value
    return out


def test_outbound_makes_a_child_of_the_apps_context_and_replaces_its_headers():
    t, sender = tracer()
    ex = request(f"x-b3-traceid: {TRACE}\r\nx-b3-spanid: {SPAN}\r\nx-b3-sampled: 1\r\n".encode())
    sent = lines_dict(t.outbound(ex))
    assert sent["x-b3-traceid"] == TRACE and sent["x-b3-parentspanid"] == SPAN
    assert sent["x-b3-spanid"] != SPAN and sent["x-b3-sampled"] == "1"
    assert not any(n.startswith(b"x-b3-") for n, _ in ex.headers)  # the app's copy is gone
    ex.status, ex.flags, ex.bytes_out = 503, "FI", 18
    t.finished(ex, "source", 12.5)
    (span,) = sender.spans
    assert (span.trace_id, span.id, span.parent_id) == (TRACE, sent["x-b3-spanid"], SPAN)
    assert span.kind == "CLIENT" and span.duration == 12500
    data = span.to_json()
    assert data["localEndpoint"] == {"serviceName": "reviews.default", "ipv4": "10.0.0.7"}
    tags = data["tags"]
    assert tags["http.status_code"] == "503" and tags["response_flags"] == "FI"
    assert tags["error"] == "true" and tags["component"] == "proxy"
    assert tags["guid:x-request-id"] == "rid-1" and tags["http.method"] == "GET"
    assert tags["http.url"] == "http://ratings:9080/ratings/0"
    assert tags["node_id"] == "sidecar~10.0.0.7~reviews-v2-1.default~default.svc.cluster.local"
    assert tags["response_size"] == "18"


def test_outbound_without_a_context_starts_a_sampled_trace():
    t, sender = tracer()
    ex = request()
    sent = lines_dict(t.outbound(ex))
    assert sent["x-b3-traceid"] == sent["x-b3-spanid"] and "x-b3-parentspanid" not in sent
    ex.status = 200
    t.finished(ex, "source", 1.0)
    (span,) = sender.spans
    assert span.parent_id is None and "error" not in span.to_json()["tags"]


def test_inbound_shares_the_callers_span_and_leaves_its_headers_alone():
    t, sender = tracer()
    ex = request(
        f"x-b3-traceid: {TRACE}\r\nx-b3-spanid: {SPAN}\r\nx-b3-parentspanid: {'1' * 16}\r\n"
        "x-b3-sampled: 1\r\n".encode(),
        target=b"/ratings/0",
    )
    assert t.inbound(ex) == []  # the app gets the caller's headers as they are
    assert any(n == b"x-b3-spanid" for n, _ in ex.headers)
    ex.status = 200
    t.finished(ex, "destination", 3.0)
    (span,) = sender.spans
    assert (span.id, span.parent_id, span.kind) == (SPAN, "1" * 16, "SERVER")
    data = span.to_json()
    assert data["shared"] is True and data["name"] == "reviews.default.svc.cluster.local:9080/*"
    assert data["tags"]["http.url"] == "http://ratings:9080/ratings/0"


def test_inbound_without_a_context_starts_a_trace_for_the_app():
    t, sender = tracer()
    ex = request(target=b"/ratings/0")
    sent = lines_dict(t.inbound(ex))
    assert sent["x-b3-sampled"] == "1" and ex.trace is not None and ex.trace_root
    t.finished(ex, "destination", 1.0)
    assert "shared" not in sender.spans[0].to_json()  # a root span is not shared


def test_sampling_zero_propagates_but_records_nothing_and_a_callers_zero_is_kept():
    t, sender = tracer(sampling=0.0)
    ex = request()
    sent = lines_dict(t.outbound(ex))
    assert sent["x-b3-sampled"] == "0" and ex.trace is None
    t, sender = tracer(sampling=100.0)
    ex = request(f"x-b3-traceid: {TRACE}\r\nx-b3-spanid: {SPAN}\r\nx-b3-sampled: 0\r\n".encode())
    assert lines_dict(t.outbound(ex))["x-b3-sampled"] == "0" and ex.trace is None


def test_malformed_b3_is_replaced_by_a_new_trace():
    t, _ = tracer()
    ex = request(b"x-b3-traceid: nothex\r\nx-b3-spanid: 0000000000000000\r\n")
    sent = lines_dict(t.outbound(ex))
    assert sent["x-b3-traceid"] != "nothex" and t.malformed == 1
    assert [v for n, v in ex.headers if n == b"x-b3-traceid"] == []


def test_no_collector_records_nothing_but_still_propagates():
    quiet = Tracer(PROXY, None, random.Random(1))
    ex = request()
    assert lines_dict(quiet.outbound(ex))["x-b3-sampled"] == "1"
    assert ex.trace is None  # nothing to send spans to: nothing recorded


def test_env_knobs():
    assert sampling_from_env({}) == 100.0
    assert sampling_from_env({"PILOT_TRACE_SAMPLING": "1"}) == 1.0
    assert sampling_from_env({"PILOT_TRACE_SAMPLING": "250"}) == 100.0
    assert sampling_from_env({"PILOT_TRACE_SAMPLING": "x"}) == 100.0
    assert sampling_from_env({"PILOT_TRACE_SAMPLING": "nan"}) == 100.0
    assert telemetry_enabled({}) and not telemetry_enabled({"MESH_TELEMETRY": "off"})


def test_the_encoded_span_is_the_reference_models_json():
    """The tracer writes spans as text; the text is what ``zipkin.client_span`` /
    ``server_span`` (the reference model) give for the same values, member for member."""
    t, sender = tracer()
    ex = request(
        f"x-b3-traceid: {TRACE}\r\nx-b3-spanid: {SPAN}\r\nx-b3-sampled: 1\r\n"
        'user-agent: a "quoted" agent\\\r\n'.encode()
    )
    t.outbound(ex)
    ex.status, ex.flags, ex.bytes_in, ex.bytes_out = 503, "UF,URX", 5, 91
    ex.cluster_name, ex.upstream_host = "outbound|9080|v2|ratings.default.svc.cluster.local", "h:1"
    t.finished(ex, "source", 3.25)
    reference = zipkin.client_span(
        TraceContext(*ex.trace[:3], sampled=True, debug=ex.trace[3]), PROXY,
        zipkin.Exchange(
            start_us=int((ex.start + t._offset) * 1_000_000), duration_us=3250, method="GET",
            url="http://ratings:9080/ratings/0", status=503, flags="UF,URX",
            request_id="rid-1", user_agent=ex.hdict["user-agent"], peer_address=ex.conn.peer,
            request_size=5, response_size=91, upstream_cluster=ex.cluster_name,
            upstream_address="h:1",
        ),
        "ratings:80/*",
    )  # fmt: skip
    (text,) = sender.texts
    assert strict_json(text) == json.loads(json.dumps(reference.to_json()))


def test_a_flood_of_spans_is_bounded_by_the_senders_queue():
    """Nothing is sent without the sender's task; the queue holds ``max_pending`` spans and
    counts the rest as dropped, whatever the request rate."""
    from mesh.spansender import SpanSender

    sender = SpanSender("127.0.0.1", 9, max_pending=3)
    t = Tracer(PROXY, sender, random.Random(3))
    for _ in range(5):
        ex = request()
        t.outbound(ex)
        ex.status = 200
        t.finished(ex, "source", 1.0)
    assert len(sender.pending) == 3 and sender.stats.spans_dropped == 2


def test_server_spans_are_renamed_for_the_service_port_once_it_is_known():
    """Process mode: the proxy listens on a loopback port of its own; once the snapshot's
    catalog names its Service port, the SERVER spans carry that (Istio's decorator)."""
    t, sender = tracer()
    t.name_inbound("reviews.default.svc.cluster.local:47113/*")  # what the listener port gave

    def server_span_name() -> str:
        ex = request(f"x-b3-traceid: {TRACE}\r\nx-b3-spanid: {SPAN}\r\nx-b3-sampled: 1\r\n"
                     .encode(), target=b"/r")  # fmt: skip
        t.inbound(ex)
        ex.status = 200
        t.finished(ex, "destination", 1.0)
        return sender.spans[-1].name

    assert server_span_name() == "reviews.default.svc.cluster.local:47113/*"
    t.name_inbound("Reviews.default.svc.cluster.local:9080/*")
    assert server_span_name() == "reviews.default.svc.cluster.local:9080/*"  # cache dropped


def _reference_text(t: Tracer, ex: Any, reporter: str, ms: float, name: str, url: str) -> str:
    """``json.dumps`` of the reference model's span for what ``ex`` holds."""
    exchange = zipkin.Exchange(
        start_us=int((ex.start + t._offset) * 1_000_000), duration_us=int(ms * 1000),
        method=ex.method, url=url, status=ex.status, flags=ex.flags,
        request_id=ex.request_id or ex.hdict.get("x-request-id"),
        user_agent=ex.hdict.get("user-agent"),
        downstream_cluster=ex.hdict.get("x-envoy-downstream-service-cluster"),
        peer_address=ex.conn.peer, request_size=ex.bytes_in, response_size=ex.bytes_out,
        upstream_cluster=ex.cluster_name, upstream_address=ex.upstream_host,
    )  # fmt: skip
    ctx = TraceContext(*ex.trace[:3], sampled=True, debug=ex.trace[3])
    if reporter == "destination":
        span = zipkin.server_span(ctx, PROXY, exchange, name, shared=not ex.trace_root)
    else:
        span = zipkin.client_span(ctx, PROXY, exchange, name)
    return json.dumps(span.to_json(), separators=(",", ":"))


def test_every_span_shape_is_the_reference_models_json():
    """Member for member (the text is valid JSON, no member twice, every value the
    reference model's; the order of members is free in JSON), whichever parts a span has:
    a CLIENT span of a new trace (no parent), SERVER spans shared with the caller's and a
    root one, debug, no request id, flags or none, a 5xx or not, spans whose cached parts
    are the same but whose URL is not (the URL is part of what is cached per request
    shape), and a request id that is the caller's (escaped, quotes and backslashes too) or
    this proxy's own (``new_request_id``)."""
    inbound = "reviews.default.svc.cluster.local:9080/*"
    ids = f"x-b3-traceid: {TRACE}\r\nx-b3-spanid: {SPAN}\r\n".encode()
    single = f"b3: {TRACE}-{SPAN}-d\r\n".encode()
    cases = [
        # (reporter, extra headers, target, status, flags, request id: the header's value,
        # None or OWN: one this proxy made)
        ("source", b"", b"/ratings/0", 200, "", b"rid-1"),
        ("source", b"", b"/ratings/1", 200, "", b"rid-1"),  # same fragment key but the URL
        ("source", b"", b"http://ratings:9080/ratings/2?x=1", 0, "UH", None),
        ("source", b"x-b3-flags: 1\r\n" + ids, b"/r", 404, "NR", b"rid-1"),  # debug
        ("source", b"", b"/ratings/0", 200, "", OWN),
        ("source", b"", b"/ratings/0", 200, "", b'r"i\\d'),
        ("destination", ids + b"x-b3-sampled: 1\r\n", b"/ratings/0", 500, "", b"rid-1"),
        ("destination", b"", b"/ratings/0", 200, "", None),  # a root: not shared
        (
            "destination",
            single + b'x-envoy-downstream-service-cluster: "q"\\\r\n',
            b"/",
            201,
            "",
            b"rid-1",
        ),
    ]
    t, sender = tracer()
    expected = []
    for reporter, headers, target, status, flags, rid in cases:
        pending: list[Any] = []
        conn, _, _, _ = make_downstream(pending.append)
        conn.data_received(
            b"GET " + target + b" HTTP/1.1\r\nhost: ratings:9080\r\nuser-agent: t\r\n"
            + (b"x-request-id: " + rid + b"\r\n" if isinstance(rid, bytes) else b"")
            + headers + b"\r\n"
        )  # fmt: skip
        ex = pending[0]
        if rid is OWN:
            ex.request_id = new_request_id()
        if reporter == "destination":
            t.inbound(ex)
            name = inbound
        else:
            t.outbound(ex)
            name = "ratings:80/*"
        ex.status, ex.flags, ex.bytes_in, ex.bytes_out = status, flags, 7, 1024
        t.finished(ex, reporter, 0.25)
        path = target.decode().split("ratings:9080", 1)[-1]
        expected.append(_reference_text(t, ex, reporter, 0.25, name, f"http://ratings:9080{path}"))
    for got, want in zip(sender.texts, expected, strict=True):
        assert strict_json(got) == json.loads(want)  # the same members, nested alike
    assert len({text.split('"http.url":')[1][:40] for text in sender.texts}) >= 4


def strict_json(text: str) -> Any:
    """``json.loads``, refusing a member named twice (which a plain load keeps silently)."""

    def members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in pairs]
        assert len(names) == len(set(names)), f"a member named twice: {names}"
        return dict(pairs)

    return json.loads(text, object_pairs_hook=members)


def test_finished_hands_the_sender_the_span_text():
    """``finished`` queues the span's text (``encode``): nothing of the exchange is kept."""
    queued: list[Any] = []

    class Queue:
        def submit(self, span: Any) -> bool:
            queued.append(span)
            return True

    t = Tracer(PROXY, Queue(), random.Random(7))  # type: ignore[arg-type]
    ex = request()
    t.outbound(ex)
    ex.status, ex.flags, ex.bytes_in, ex.bytes_out = 503, "UF", 5, 91
    t.finished(ex, "source", 3.25)
    assert queued == [t.encode(ex, "source", 3.25)]
    assert type(queued[0]) is str
