"""Header names shared by the sidecar and the Bookinfo services.

``PROPAGATED_HEADERS`` is Bookinfo's documented list (productpage.py ``getForwardHeaders``):
every service copies these from its inbound request onto each outbound call, so that tracing
works and so that mesh rules matching on ``end-user`` see the logged-in user downstream.
"""

PROPAGATED_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "traceparent",
    "tracestate",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
)

# Response header listing, in call order, the service-version of every pod that answered.
SERVED_BY = "x-served-by"

# A lab header (Envoy has none): a sidecar's local replies, and the upstream failures it turns
# into replies, carry their response flags (``FI``, ``UH``, ``UF,URX``...), the same as its
# access log, so the calling app can say why a hop failed (productpage's ``reviews ✗ 503 FI``).
RESPONSE_FLAGS = "x-meshlab-response-flags"

# RFC 9110 section 7.6.1 connection-specific headers: a proxy never forwards these.
HOP_BY_HOP_HEADERS: frozenset[str] = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
