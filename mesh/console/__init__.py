"""The console (Kiali's role): a small aiohttp app on port 20001 (``CONSOLE_PORT``).

It reads metrics only through Prometheus's HTTP API and config from the mesh directory, and
collects traces itself on Zipkin's v2 API. Modules: ``app`` (routes, the ``Console`` that
gathers the data), ``graph`` (the versioned-app graph, pure), ``config_view`` (configured
shares and badges from the routing engine's compiled tables), ``prometheus`` (the client and
the PromQL), ``collector`` (Zipkin's API), ``views`` (server-rendered HTML and SVG; the page's
script only swaps fragments in) and ``run`` (the command line: ``python -m mesh.console``,
``meshlab console``).
"""
