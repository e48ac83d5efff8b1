"""Load plans for the demo shapes: pure functions of the run time, no Locust import.

``shapes.py`` wraps them in Locust's ``LoadTestShape`` (``tick()`` returns
``(users, spawn_rate)`` or ``None`` to stop); keeping the arithmetic here lets it be tested
without gevent.

Primitives:

- ``ShapeConfig.from_env(environ)`` -- ``MESHLAB_USERS`` (peak users, 20), ``MESHLAB_SPAWN_RATE``
  (users/s, 5), ``MESHLAB_RAMP_SECONDS`` (60), ``MESHLAB_STEP_SECONDS`` (10: the ramp rises in
  steps so each level is visible on the charts), ``MESHLAB_DURATION`` (seconds; 0 = until
  stopped from the UI).
- ``steady(t, cfg)`` -- the peak at once, held: the workshop's background load, so the version
  chart always has traffic to split.
- ``ramp(t, cfg)`` -- from one user up to the peak in steps over ``ramp_seconds``, then held.
- ``wait_bounds(raw)`` -- ``MESHLAB_WAIT``, the users' think time (``0.5,2`` s; ``0``: none).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

Tick = tuple[int, float] | None


def _number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ValueError(f"{name}={raw!r}: expected a number") from exc
    if value < 0:
        raise ValueError(f"{name}={raw!r}: must not be negative")
    return value


@dataclass(frozen=True, slots=True)
class ShapeConfig:
    users: int = 20
    spawn_rate: float = 5.0
    ramp_seconds: float = 60.0
    step_seconds: float = 10.0
    duration: float = 0.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ShapeConfig:
        default = cls()  # slots=True: the class attributes are descriptors, not defaults
        return cls(
            users=max(1, int(_number(environ, "MESHLAB_USERS", default.users))),
            spawn_rate=max(0.1, _number(environ, "MESHLAB_SPAWN_RATE", default.spawn_rate)),
            ramp_seconds=_number(environ, "MESHLAB_RAMP_SECONDS", default.ramp_seconds),
            step_seconds=max(1.0, _number(environ, "MESHLAB_STEP_SECONDS", default.step_seconds)),
            duration=_number(environ, "MESHLAB_DURATION", default.duration),
        )


def _over(t: float, cfg: ShapeConfig) -> bool:
    return cfg.duration > 0 and t >= cfg.duration


def steady(t: float, cfg: ShapeConfig) -> Tick:
    if _over(t, cfg):
        return None
    return cfg.users, cfg.spawn_rate


def ramp(t: float, cfg: ShapeConfig) -> Tick:
    if _over(t, cfg):
        return None
    if cfg.ramp_seconds <= 0 or t >= cfg.ramp_seconds:
        return cfg.users, cfg.spawn_rate
    steps = max(1, math.ceil(cfg.ramp_seconds / cfg.step_seconds))
    step = min(steps, int(t // cfg.step_seconds) + 1)
    users = max(1, round(cfg.users * step / steps))
    # Spawn a whole step within a couple of seconds so the level is reached, then held.
    return users, max(cfg.spawn_rate, cfg.users / steps)


def wait_bounds(raw: str) -> tuple[float, float]:
    """``MESHLAB_WAIT``: ``"0.5,2"`` (think time between requests, seconds; the default),
    ``"0"`` for none (a throughput measurement, not a visitor)."""
    parts = [p for p in raw.replace(" ", "").split(",") if p] or ["0.5", "2.0"]
    try:
        low, high = float(parts[0]), float(parts[-1])
    except ValueError as exc:
        raise ValueError(f"MESHLAB_WAIT={raw!r}: expected SECONDS or MIN,MAX") from exc
    if low < 0 or high < low:
        raise ValueError(f"MESHLAB_WAIT={raw!r}: expected 0 <= MIN <= MAX")
    return low, high


PLANS = {"steady": steady, "ramp": ramp}
