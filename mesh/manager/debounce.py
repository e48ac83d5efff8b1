"""Debouncing bursts of file events into one evaluation (pure: the clock is passed in).

``Debouncer(quiet, max_delay)``: ``poke(now)`` on every event; ``due(now)`` becomes true once
``quiet`` seconds passed without a poke, or ``max_delay`` after the first poke of the burst —
the cap matters because twenty sidecars heartbeating every second would otherwise keep the
registry directory busy forever and starve publishing. ``fire()`` starts a new burst.

``poke(now, urgent=True)`` makes the burst due at once: ``meshctl apply`` writes its files as
one transaction under the config lock and then says so (``config/.applied``), so there is
nothing left to coalesce and waiting would only add latency. The manager keeps one debouncer
for ``config/`` and one for ``registry/``, so heartbeat churn never delays a config change.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Debouncer:
    quiet: float = 0.1
    max_delay: float = 0.5
    first: float | None = None
    last: float | None = None
    urgent: bool = False

    @property
    def pending(self) -> bool:
        return self.first is not None

    def poke(self, now: float, *, urgent: bool = False) -> None:
        if self.first is None:
            self.first = now
        self.last = now
        self.urgent = self.urgent or urgent

    def deadline(self) -> float | None:
        """When the pending burst becomes due (None when nothing is pending)."""
        if self.first is None or self.last is None:
            return None
        if self.urgent:
            return self.first
        return min(self.last + self.quiet, self.first + self.max_delay)

    def due(self, now: float) -> bool:
        deadline = self.deadline()
        return deadline is not None and now >= deadline

    def fire(self) -> None:
        self.first = self.last = None
        self.urgent = False
