"""The vocabulary of ``retries.retryOn``: Envoy's ``x-envoy-retry-on`` conditions, the gRPC
ones Istio accepts, and bare status codes (``"5xx,503"``).

Primitives: ``parse_retry_on(text)`` → (condition tokens, status codes), used by the retry
policy (``mesh.resilience.retry``), and ``unknown_retry_tokens(text)``, used by validation.
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


def unknown_retry_tokens(text: str) -> list[str]:
    tokens, _ = parse_retry_on(text)
    return sorted(t for t in tokens if t not in HTTP_RETRY_TOKENS | GRPC_RETRY_TOKENS)
