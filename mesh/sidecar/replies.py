"""Envoy's local replies, one table: the status, body and response flag of every answer the
proxy gives by itself, and ``send`` to give one.

The bodies are Envoy's texts (``mesh.routing.decision``); the flags are the access log's and
Istio's ``response_flags`` label. A verdict's reply (``mesh.resilience.verdict``) names its
status and flags; ``send_verdict`` finds the body by its first flag.
"""

from __future__ import annotations

from dataclasses import dataclass

from mesh.resilience.verdict import Verdict
from mesh.routing.decision import (
    CONNECT_FAILURE_BODY,
    CONNECTION_TERMINATION_BODY,
    FAULT_ABORT_BODY,
    NO_CLUSTER_BODY,
    NO_HEALTHY_UPSTREAM_BODY,
    OVERFLOW_BODY,
    UPSTREAM_TIMEOUT_BODY,
)
from mesh.sidecar.http1.exchange import Exchange

# ``mesh.security.authz.DENIED_BODY`` (not imported: a proxy without policies never loads
# the authorization core).
RBAC_DENIED_BODY = b"RBAC: access denied"


@dataclass(frozen=True, slots=True)
class Local:
    """One kind of local reply."""

    status: int
    body: bytes
    flag: str
    headers: tuple[tuple[bytes, bytes], ...] = ()
    close: bool = False


NO_HEALTHY_UPSTREAM = Local(503, NO_HEALTHY_UPSTREAM_BODY, "UH")
NO_CLUSTER = Local(503, NO_CLUSTER_BODY, "NC")
OVERFLOW = Local(503, OVERFLOW_BODY, "UO", ((b"x-envoy-overloaded", b"true"),))
UPSTREAM_TIMEOUT = Local(504, UPSTREAM_TIMEOUT_BODY, "UT")
CONNECT_FAILURE = Local(503, CONNECT_FAILURE_BODY, "UF")
# A connection reset before the response head by a server that requires mTLS (STRICT).
CONNECTION_TERMINATION = Local(503, CONNECTION_TERMINATION_BODY, "UC")
# AuthorizationPolicy denial: Envoy's RBAC filter sets no response flag.
RBAC_DENIED = Local(403, RBAC_DENIED_BODY, "")
FAULT_ABORT = Local(503, FAULT_ABORT_BODY, "FI")  # the status is the fault's
BAD_PATH = Local(400, b"", "")  # a path that cannot be normalised (Envoy keeps the connection)
INTERNAL_ERROR = Local(500, b"internal proxy error", "", close=True)  # a bug, never the proxy

_BY_FLAG = {
    local.flag: local
    for local in (NO_HEALTHY_UPSTREAM, UPSTREAM_TIMEOUT, CONNECT_FAILURE, CONNECTION_TERMINATION)
}


def send(ex: Exchange, local: Local, flags: str | None = None, status: int | None = None) -> None:
    """Answer ``ex`` with ``local``; ``flags`` replaces its flag (``UH,URX``), ``status`` its
    status (an injected abort's)."""
    ex.reply(
        status or local.status,
        local.body,
        local.flag if flags is None else flags,
        local.headers,
        local.close,
    )


def send_verdict(ex: Exchange, verdict: Verdict) -> None:
    """Answer with a verdict's reply: 504 UT or 503 UF, with ``URX`` after retries."""
    send(ex, _BY_FLAG[verdict.flag.partition(",")[0]], verdict.flag, verdict.status)
