"""The vocabulary of ``retries.retryOn``: Envoy's ``x-envoy-retry-on`` conditions, the gRPC
ones Istio accepts, and bare status codes (``"5xx,503"``).

Primitives: ``parse_retry_on(text)`` → (condition tokens, status codes), used by the retry
policy (``mesh.resilience.retry``), and ``invalid_retry_policies(text)``, Istio's validation
rule (the text split on commas exactly as written; a bare number must be an HTTP status).
"""

from __future__ import annotations

# Envoy's x-envoy-retry-on tokens plus the gRPC ones Istio accepts.
HTTP_RETRY_TOKENS = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "envoy-ratelimited",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "http3-post-connect-failure",
    }
)
GRPC_RETRY_TOKENS = frozenset(
    {"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"}
)


def parse_retry_on(text: str) -> tuple[frozenset[str], frozenset[int]]:
    """Split ``retryOn`` into Envoy tokens and bare status codes (``"5xx,503"``)."""
    tokens: set[str] = set()
    codes: set[int] = set()
    for raw in text.split(","):
        token = raw.strip()
        if not token:
            continue
        if token.isdigit():
            codes.add(int(token))
            tokens.add("retriable-status-codes")
        else:
            tokens.add(token)
    return frozenset(tokens), frozenset(codes)


# The codes Go's net/http has a status text for: what Istio accepts as a bare retryOn status.
KNOWN_HTTP_STATUSES = frozenset(
    [100, 101, 102, 103, *range(200, 209), 226, *range(300, 306), 307, 308]
    + [*range(400, 419), 421, 422, 423, 424, 425, 426, 428, 429, 431, 451]
    + [*range(500, 509), 510, 511]
)


def invalid_retry_policies(text: str) -> list[str]:
    """Istio's ValidateHTTPRetry: each comma-separated policy, as written (no trimming: Istio
    refuses ``"5xx, reset"``), is an Envoy condition or a known HTTP status."""
    known = HTTP_RETRY_TOKENS | GRPC_RETRY_TOKENS
    return [
        policy
        for policy in text.split(",")
        if policy not in known and not (policy.isdigit() and int(policy) in KNOWN_HTTP_STATUSES)
    ]
