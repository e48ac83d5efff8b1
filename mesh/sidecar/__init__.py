"""The data plane: one asyncio process per pod (sidecar) or per ingress (gateway role).

Modules, from the wire inwards:

- ``downstream``: HTTP/1.1 towards clients (``Exchange``, ``Downstream`` protocol).
- ``upstream``: keep-alive connections to endpoints (``UpstreamConn``, ``Attempt``, ``Pool``).
- ``pipeline``: the ordered request stages (decide, fault, admit, try/retry, respond,
  mirror), listed once in its docstring; a synchronous fast path and coroutine slow paths.
- ``clusters``: per-cluster runtime state (limits, balancer, outlier detector).
- ``cors``: a route's ``corsPolicy``.
- ``telemetry``: Prometheus counters/histogram and the access log.
- ``prober``: Kubernetes readiness probing of the pod's app.
- ``server``: the process (listeners, snapshot watcher, registry/status heartbeat, admin).
- ``inotify``, ``files``, ``memory_budget``: directory watching, the shared directory's
  writes on a writer thread (what is written: ``mesh.meshdir``), keeping the process small.
- ``testing``: real sidecars and scriptable upstreams for tests and benchmarks.

The routing decisions themselves come from the pure engine (``mesh.routing``,
``mesh.resilience``); this package only does I/O around them.
"""
