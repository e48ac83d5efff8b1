"""The retryOn vocabulary: tokens and bare status codes."""

from __future__ import annotations

from mesh.config.retry_on import invalid_retry_policies, parse_retry_on


def test_bare_status_codes_mean_retriable_status_codes() -> None:
    tokens, codes = parse_retry_on("5xx, 503,,gateway-error")
    assert tokens == {"5xx", "retriable-status-codes", "gateway-error"}
    assert codes == {503}


def test_unknown_tokens_are_named_sorted() -> None:
    assert invalid_retry_policies("5xx,sometimes,unavailable,always") == ["sometimes", "always"]
    assert invalid_retry_policies("connect-failure,cancelled,409") == []
    # Istio splits on commas as written and knows only real HTTP statuses.
    assert invalid_retry_policies("5xx, reset") == [" reset"]
    assert invalid_retry_policies("599,5xx,") == ["599", ""]
