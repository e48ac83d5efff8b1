"""The shared field types: percentages as fractions, presence-only string matches."""

from __future__ import annotations

from mesh.config.fields import Percent, StringMatch, share


def test_share_prefers_percentage_then_the_deprecated_percent_then_the_default() -> None:
    assert share(Percent(12.5), 50) == 0.125
    assert share(None, 50) == 0.5
    assert share(None, None, default=1.0) == 1.0


def test_a_zero_percentage_is_zero_not_the_default() -> None:
    # ``percentage: {value: 0}`` is set (never injected); only a missing one falls back.
    assert share(Percent(0.0), None, default=1.0) == 0.0


def test_an_empty_string_match_means_presence() -> None:
    assert StringMatch().kind is None
    assert StringMatch("prefix", "") != StringMatch()
