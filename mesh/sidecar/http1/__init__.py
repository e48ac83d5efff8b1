"""The proxy's HTTP/1.1 wire code, both sides, knowing nothing of routing.

``framing`` (body delimitation, chunks, status lines: what both sides share), ``exchange``
(one request/response pair on a client connection), ``server`` (the client connection:
parsing, pipelining, limits, timeouts), ``client`` (upstream connections, one try at a time,
and their keep-alive pool).
"""
