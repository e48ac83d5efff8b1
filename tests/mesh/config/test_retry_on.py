"""The retryOn vocabulary: tokens and bare status codes."""

from __future__ import annotations

from mesh.config.retry_on import parse_retry_on, unknown_retry_tokens


def test_bare_status_codes_mean_retriable_status_codes() -> None:
    tokens, codes = parse_retry_on("5xx, 503,,gateway-error")
    assert tokens == {"5xx", "retriable-status-codes", "gateway-error"}
    assert codes == {503}


def test_unknown_tokens_are_named_sorted() -> None:
    assert unknown_retry_tokens("5xx,sometimes,unavailable,always") == ["always", "sometimes"]
    assert unknown_retry_tokens("connect-failure,cancelled,409") == []
