"""Fault injection rolls: ``roll(fault, rng) -> (delay seconds | None, abort status | None)``.

Istio semantics: a fault without ``percentage`` injects nothing (istio#39969); delay falls
back to the deprecated integer ``percent``. Delay and abort are sampled independently; when
both fire, the delay comes first, then the abort.
"""

from __future__ import annotations

import random

from mesh.config.model import Abort, Delay, HTTPFaultInjection, share


def delay_fraction(delay: Delay) -> float:
    """Share of requests (0..1) this delay applies to (no percentage: none)."""
    return share(delay.percentage, delay.percent)


def abort_fraction(abort: Abort) -> float:
    return share(abort.percentage)


def _fires(fraction: float, rng: random.Random) -> bool:
    # Envoy samples per million; rng.random() < fraction is the same distribution.
    return fraction >= 1.0 or (fraction > 0.0 and rng.random() < fraction)


def roll(fault: HTTPFaultInjection | None, rng: random.Random) -> tuple[float | None, int | None]:
    """Decide whether this request is delayed and/or aborted."""
    if fault is None:
        return None, None
    delay = None
    abort = None
    if fault.delay is not None and fault.delay.fixed_delay is not None:
        if _fires(delay_fraction(fault.delay), rng):
            delay = fault.delay.fixed_delay
    if fault.abort is not None and fault.abort.http_status is not None:
        if _fires(abort_fraction(fault.abort), rng):
            abort = fault.abort.http_status
    return delay, abort
