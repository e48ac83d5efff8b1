"""Outlier detection: Envoy's consecutive-error ejection as a pure state machine per host.

One ``OutlierDetector`` per client proxy and upstream cluster (state is never shared between
proxies, istio#45128). Each host is HEALTHY or EJECTED:

    HEALTHY --Nth consecutive error--> EJECTED   (inline, if maxEjectionPercent allows)
    EJECTED --sweep at/after ejected_until--> HEALTHY
    HEALTHY --sweep with no ejection pending--> multiplier decays by one

Ejection lasts ``baseEjectionTime × number of ejections`` (capped at max(300 s, base)).
``maxEjectionPercent`` caps the ejected share, but one host can always be ejected.
Local-origin failures (connect failure, reset, timeout: ``status=None``) count as 5xx and as
gateway errors, as in Envoy without ``splitExternalLocalOriginErrors``.

Thresholds (Lab decision 1): ``consecutive5xxErrors`` (Envoy default 5 when the block is
present and none of the three is set; 0 disables), ``consecutiveGatewayErrors`` (off unless
> 0), and the deprecated ``consecutiveErrors``, honoured as gateway errors (Istio ≤ 1.6,
which then turned 5xx ejection off).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from mesh.config.model import OutlierDetection

DEFAULT_CONSECUTIVE_5XX = 5
DEFAULT_INTERVAL = 10.0
DEFAULT_BASE_EJECTION = 30.0
DEFAULT_MAX_EJECTION_PERCENT = 10
MAX_EJECTION_TIME = 300.0
GATEWAY_ERRORS = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class OutlierSettings:
    """Effective thresholds after Istio's and Envoy's defaults (0 = that detector is off)."""

    consecutive_5xx: int
    consecutive_gateway: int
    consecutive_local_origin: int
    split_local_origin: bool
    interval: float
    base_ejection_time: float
    max_ejection_percent: int

    @classmethod
    def from_config(cls, config: OutlierDetection) -> OutlierSettings:
        gateway = config.consecutive_gateway_errors or 0
        if config.consecutive_5xx_errors is not None:
            five_xx = config.consecutive_5xx_errors
        elif config.consecutive_errors is not None:
            five_xx = 0  # Istio ≤ 1.6: consecutiveErrors meant gateway errors only
        elif gateway > 0:
            five_xx = DEFAULT_CONSECUTIVE_5XX
        else:
            five_xx = DEFAULT_CONSECUTIVE_5XX
        if config.consecutive_errors is not None and not gateway:
            gateway = config.consecutive_errors
        base = config.base_ejection_time or DEFAULT_BASE_EJECTION
        return cls(
            consecutive_5xx=five_xx,
            consecutive_gateway=gateway,
            consecutive_local_origin=config.consecutive_local_origin_failures or 5,
            split_local_origin=bool(config.split_external_local_origin_errors),
            interval=config.interval or DEFAULT_INTERVAL,
            base_ejection_time=base,
            max_ejection_percent=(
                DEFAULT_MAX_EJECTION_PERCENT
                if config.max_ejection_percent is None
                else config.max_ejection_percent
            ),
        )


@dataclass(slots=True)
class HostState:
    consecutive_5xx: int = 0
    consecutive_gateway: int = 0
    consecutive_local: int = 0
    ejections: int = 0  # the multiplier: grows per ejection, decays per healthy sweep
    ejected_until: float | None = None
    total_ejections: int = 0

    @property
    def ejected(self) -> bool:
        return self.ejected_until is not None

    def reset_counters(self) -> None:
        self.consecutive_5xx = self.consecutive_gateway = self.consecutive_local = 0


class OutlierDetector:
    """Ejection state for the hosts of one cluster, as seen by one client proxy."""

    def __init__(self, policy: OutlierDetection | None) -> None:
        self.policy = policy
        self.settings = OutlierSettings.from_config(policy) if policy is not None else None
        self.hosts: dict[str, HostState] = {}

    @property
    def enabled(self) -> bool:
        return self.settings is not None

    @property
    def interval(self) -> float:
        return self.settings.interval if self.settings else DEFAULT_INTERVAL

    def set_hosts(self, keys: Iterable[str]) -> None:
        """Track exactly these hosts (new ones healthy; vanished ones forgotten)."""
        wanted = set(keys)
        for key in list(self.hosts):
            if key not in wanted:
                del self.hosts[key]
        for key in wanted:
            self.hosts.setdefault(key, HostState())

    def is_ejected(self, key: str, now: float) -> bool:
        del now  # return to service happens only at sweeps, as in Envoy
        state = self.hosts.get(key)
        return state is not None and state.ejected

    def record(self, key: str, status: int | None, now: float) -> bool:
        """Count one outcome for a host; True when this outcome ejected it."""
        settings = self.settings
        if settings is None:
            return False
        state = self.hosts.setdefault(key, HostState())
        if state.ejected:
            return False
        if status is None:
            if settings.split_local_origin:
                state.consecutive_local += 1
                return self._maybe_eject(
                    state, state.consecutive_local, settings.consecutive_local_origin, now
                )
            five_xx_error = gateway_error = True
        else:
            five_xx_error = status >= 500
            gateway_error = status in GATEWAY_ERRORS
        if not five_xx_error:
            state.reset_counters()
            return False
        state.consecutive_5xx += 1
        if gateway_error:
            state.consecutive_gateway += 1
        else:
            state.consecutive_gateway = 0
        return self._maybe_eject(
            state, state.consecutive_gateway, settings.consecutive_gateway, now
        ) or self._maybe_eject(state, state.consecutive_5xx, settings.consecutive_5xx, now)

    def _maybe_eject(self, state: HostState, count: int, threshold: int, now: float) -> bool:
        settings = self.settings
        assert settings is not None
        if threshold <= 0 or count < threshold or state.ejected:
            return False
        ejected = sum(1 for s in self.hosts.values() if s.ejected)
        allowed = max(1, len(self.hosts) * settings.max_ejection_percent // 100)
        if settings.max_ejection_percent <= 0 or ejected >= allowed:
            state.reset_counters()
            return False
        state.ejections += 1
        state.total_ejections += 1
        ceiling = max(MAX_EJECTION_TIME, settings.base_ejection_time)
        state.ejected_until = now + min(settings.base_ejection_time * state.ejections, ceiling)
        state.reset_counters()
        return True

    def sweep(self, now: float) -> list[str]:
        """The interval timer: return hosts whose ejection time is over; decay multipliers.

        Returns the keys brought back to service.
        """
        returned = []
        for key, state in self.hosts.items():
            if state.ejected_until is not None:
                if now >= state.ejected_until:
                    state.ejected_until = None
                    state.reset_counters()
                    returned.append(key)
            elif state.ejections > 0:
                state.ejections -= 1
        return returned

    def describe(self, key: str, now: float) -> dict[str, Any]:
        state = self.hosts.get(key, HostState())
        return {
            "ejected": state.ejected,
            "ejected_for_seconds": (
                max(0.0, round(state.ejected_until - now, 3)) if state.ejected_until else 0.0
            ),
            "consecutive_5xx": state.consecutive_5xx,
            "consecutive_gateway_errors": state.consecutive_gateway,
            "ejection_multiplier": state.ejections,
            "total_ejections": state.total_ejections,
        }
