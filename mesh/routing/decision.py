"""What the routing engine is asked and what it answers.

Primitives: ``RequestView`` (the attributes of one request a route can match on),
``HeaderOps`` (set/add/remove on request or response headers), ``Cluster`` (one Envoy-style
cluster: a host, an optional subset, a port, its ready endpoints and its effective traffic
policy), and the two answers of ``decide``: ``Forward`` (send upstream, with the fault already
rolled, timeout, retries, mirrors and header operations) or ``LocalReply`` (answer locally:
404 NR, a redirect, a direct response).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field

from mesh.config import hosts as hostnames
from mesh.config.model import CorsPolicy, DestinationRule, TrafficPolicy
from mesh.resilience.retry import RetryPolicy
from mesh.snapshot import Endpoint

NO_HEADERS: Mapping[str, str] = {}


@dataclass(frozen=True, slots=True)
class RequestView:
    """The attributes of one HTTP request that routing looks at.

    ``headers`` has lowercase names; a repeated header is joined with ", ".
    ``path`` is the request target's path with its query string, as sent.
    ``port`` is the port the request was addressed on (the listener's port).
    """

    host: str
    path: str = "/"
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    scheme: str = "http"
    port: int | None = None
    source_address: str = ""


@dataclass(frozen=True, slots=True)
class HeaderOps:
    """Istio ``headers.request`` or ``headers.response``: set, then add, then remove."""

    set: tuple[tuple[str, str], ...] = ()
    add: tuple[tuple[str, str], ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.add or self.remove)

    def apply(self, headers: MutableMapping[str, str]) -> None:
        """Apply to a mapping with lowercase header names (``add`` appends, comma-joined)."""
        for name, value in self.set:
            headers[name] = value
        for name, value in self.add:
            headers[name] = f"{headers[name]},{value}" if name in headers else value
        for name in self.remove:
            headers.pop(name, None)

    def then(self, other: HeaderOps) -> HeaderOps:
        """These operations followed by ``other`` (Istio: rule level first, destination after)."""
        if not other:
            return self
        if not self:
            return other
        return HeaderOps(self.set + other.set, self.add + other.add, self.remove + other.remove)


NO_HEADER_OPS = HeaderOps()


@dataclass(frozen=True, slots=True)
class Cluster:
    """An upstream cluster, named like Envoy's ``outbound|<port>|<subset>|<fqdn>``.

    ``endpoints`` are the ready endpoints its subset selects. ``defined`` is False when a
    route names a subset no DestinationRule defines: such a cluster answers 503 NC.
    """

    name: str
    host: str
    subset: str | None
    port: int
    endpoints: tuple[Endpoint, ...]
    policy: TrafficPolicy
    defined: bool = True
    # The DestinationRule that applies (its ``tls``, with Istio's subset and port-level
    # precedence, decides what the client sends: ``mesh.security.mtls.client_tls``).
    rule: DestinationRule | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """``host/subset`` (or just ``host``): the key ``meshctl route`` reports; a Service of
        ``default`` by its short name, one elsewhere as ``name.namespace``."""
        host = hostnames.display(self.host)
        return f"{host}/{self.subset}" if self.subset else host


@dataclass(frozen=True, slots=True)
class Forward:
    """Send the request upstream to ``cluster``.

    The fault is already rolled (``fault_delay`` seconds and/or ``fault_abort`` status, each
    ``None`` when it did not fire). ``path`` and ``authority`` are after any rewrite.
    ``mirrors`` are the clusters that get a fire-and-forget copy (percentage already rolled).
    """

    cluster: Cluster
    virtual_service: str | None
    route_name: str | None
    rule_index: int
    path: str
    authority: str
    timeout: float | None
    retry: RetryPolicy
    fault_delay: float | None = None
    fault_abort: int | None = None
    mirrors: tuple[Cluster, ...] = ()
    request_headers: HeaderOps = NO_HEADER_OPS
    response_headers: HeaderOps = NO_HEADER_OPS
    cors: CorsPolicy | None = None


@dataclass(frozen=True, slots=True)
class LocalReply:
    """Answer without going upstream: 404 NR, a redirect or a direct response.

    ``flag`` is Envoy's response flag for the access log ("NR" for no route, "" otherwise).
    """

    status: int
    body: bytes
    flag: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    virtual_service: str | None = None
    route_name: str | None = None
    rule_index: int = -1
    response_headers: HeaderOps = NO_HEADER_OPS


Decision = Forward | LocalReply

# Envoy's local reply bodies (Lab decision 8). 404 NR's is built per miss by
# ``select.no_route``: Envoy's is empty, the lab's names the Host, path and served hosts.
NO_HEALTHY_UPSTREAM_BODY = b"no healthy upstream"
NO_CLUSTER_BODY = b""
OVERFLOW_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: overflow"
CONNECT_FAILURE_BODY = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection failure"
)
CONNECTION_TERMINATION_BODY = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection "
    b"termination"
)
UPSTREAM_TIMEOUT_BODY = b"upstream request timeout"
FAULT_ABORT_BODY = b"fault filter abort"
