"""Telemetry as plain data: Istio's metrics, Prometheus exposition, Zipkin spans, b3 context.

Pure like ``mesh.config``: no I/O, no clock and no random numbers of its own (times and a
``random.Random`` are passed in), so the sidecar's hot path, the console and the tests share
one definition of every metric name, label value and span field.

Modules:

- ``exposition``: ``RequestMetrics``, a counter plus histograms per label tuple, recorded with
  one dict lookup and rendered as Prometheus text exposition (format 0.0.4);
- ``istio``: Istio's standard metric names, label names and values (``Peer``, ``Service``,
  ``request_key``) and the histogram buckets Istio's proxies use;
- ``b3``: b3 trace context (``x-b3-*`` headers and the single ``b3`` header): parse, make a
  child, render for propagation;
- ``zipkin``: the Zipkin v2 span model as Envoy's Zipkin tracer emits it (``client_span`` at
  the caller's proxy, ``server_span`` at the callee's, Envoy's tags) and the strict parser the
  collector uses (``parse_spans``);
- ``traces``: ``TraceStore``, the collector's bounded memory of the last N traces and the
  queries of Zipkin's v2 API.
"""
