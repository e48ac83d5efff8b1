"""The certificate knobs both labs read from the environment (passed in: nothing here reads it).

Primitives: ``cert_ttl(env)`` — ``MESH_CERT_TTL``, the workload certificate lifetime (Istio's
``SECRET_TTL`` / ``DEFAULT_WORKLOAD_CERT_TTL``, 24 h; ``2m`` makes a workshop rotation demo),
and ``grace_ratio(env)`` — ``MESH_CERT_GRACE_RATIO``, the share of the lifetime left when the
agent renews (Istio's ``SECRET_GRACE_PERIOD_RATIO``, 0.5: renewal at half-life), both with a
``KnobError`` a trainee understands. ``parse_ttl`` reads Go durations (``90s``, ``2m``,
``1h30m``) or plain seconds. No ``cryptography`` here: the agent's resident loop imports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import timedelta

TTL_ENV = "MESH_CERT_TTL"
GRACE_ENV = "MESH_CERT_GRACE_RATIO"
DEFAULT_TTL = timedelta(hours=24)
DEFAULT_GRACE_RATIO = 0.5
# Below this a certificate would be renewed faster than a CSR round trip.
MIN_TTL = timedelta(seconds=10)

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class KnobError(ValueError):
    """A knob value that cannot be used; the message names the variable."""


def parse_ttl(text: str, name: str = TTL_ENV) -> timedelta:
    value = text.strip()
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
        pos = 0
        for found in _PART.finditer(value):
            if found.start() != pos:
                break
            seconds += float(found.group(1)) * _SECONDS[found.group(2)]
            pos = found.end()
        if pos != len(value) or not value:
            raise KnobError(
                f"{name}={text!r} is not a duration (e.g. 24h, 2m, 90s, 1h30m, or seconds)"
            ) from None
    if not math.isfinite(seconds) or timedelta(seconds=seconds) < MIN_TTL:
        raise KnobError(f"{name}={text!r}: the lifetime must be at least {MIN_TTL.seconds} s")
    return timedelta(seconds=seconds)


def cert_ttl(env: Mapping[str, str]) -> timedelta:
    text = env.get(TTL_ENV, "").strip()
    return parse_ttl(text) if text else DEFAULT_TTL


def grace_ratio(env: Mapping[str, str]) -> float:
    text = env.get(GRACE_ENV, "").strip()
    if not text:
        return DEFAULT_GRACE_RATIO
    try:
        ratio = float(text)
    except ValueError:
        raise KnobError(f"{GRACE_ENV}={text!r} is not a number (e.g. 0.5)") from None
    if not 0.0 < ratio < 1.0:
        raise KnobError(f"{GRACE_ENV}={text!r} must be between 0 and 1 (exclusive)")
    return ratio
