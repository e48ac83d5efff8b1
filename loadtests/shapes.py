"""Locust ``LoadTestShape``s for the workshop: a steady demo load and a ramp.

``MESHLAB_SHAPE=steady|ramp`` picks one (``locustfile.py`` binds only that class, because Locust
uses every shape class it finds in the locustfile); unset, the web UI's user count and spawn
rate rule. The arithmetic lives in ``plan.py``; the knobs are described there.
"""

from __future__ import annotations

import os

from locust import LoadTestShape

from loadtests.plan import ShapeConfig, Tick, ramp, steady


class SteadyShape(LoadTestShape):
    """``MESHLAB_USERS`` users (20) at once, held (``MESHLAB_DURATION`` s, 0 = until stopped)."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ShapeConfig.from_env(os.environ)

    def tick(self) -> Tick:
        return steady(self.get_run_time(), self.config)


class RampShape(LoadTestShape):
    """One user up to ``MESHLAB_USERS`` in steps over ``MESHLAB_RAMP_SECONDS``, then held."""

    def __init__(self) -> None:
        super().__init__()
        self.config = ShapeConfig.from_env(os.environ)

    def tick(self) -> Tick:
        return ramp(self.get_run_time(), self.config)


SHAPES: dict[str, type[LoadTestShape]] = {"steady": SteadyShape, "ramp": RampShape}


def selected(name: str) -> type[LoadTestShape] | None:
    """The shape class named by ``MESHLAB_SHAPE`` (``""``/``none`` -> None: UI-controlled)."""
    key = name.strip().lower()
    if key in ("", "none", "ui"):
        return None
    if key not in SHAPES:
        raise ValueError(f"MESHLAB_SHAPE={name!r}: expected one of {', '.join(SHAPES)} or none")
    return SHAPES[key]
