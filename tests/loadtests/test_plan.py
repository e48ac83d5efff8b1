"""Load-shape arithmetic (loadtests.plan)."""

from __future__ import annotations

import pytest

from loadtests.plan import ShapeConfig, ramp, steady, wait_bounds


def test_defaults_and_environment():
    assert ShapeConfig.from_env({}) == ShapeConfig()
    cfg = ShapeConfig.from_env(
        {"MESHLAB_USERS": "50", "MESHLAB_DURATION": "30", "MESHLAB_SPAWN_RATE": ""}
    )
    assert cfg.users == 50 and cfg.duration == 30 and cfg.spawn_rate == 5.0


@pytest.mark.parametrize("bad", ["fifty", "-1"])
def test_bad_numbers_name_their_variable(bad):
    with pytest.raises(ValueError, match="MESHLAB_USERS"):
        ShapeConfig.from_env({"MESHLAB_USERS": bad})


def test_steady_holds_until_the_duration():
    cfg = ShapeConfig(users=50, spawn_rate=10, duration=30)
    assert steady(0, cfg) == (50, 10)
    assert steady(29.9, cfg) == (50, 10)
    assert steady(30, cfg) is None
    assert steady(1e6, ShapeConfig()) == (20, 5.0)  # duration 0: until stopped


def test_ramp_climbs_in_steps_then_holds():
    cfg = ShapeConfig(users=20, ramp_seconds=60, step_seconds=10)
    users = [ramp(t, cfg)[0] for t in (0, 9.9, 10, 25, 59, 60, 600)]
    assert users == [3, 3, 7, 10, 20, 20, 20]
    assert all(b >= a for a, b in zip(users, users[1:], strict=False))
    assert ramp(0, ShapeConfig(users=1))[0] == 1


def test_ramp_stops_at_the_duration_and_handles_no_ramp():
    assert ramp(5, ShapeConfig(duration=5)) is None
    assert ramp(0, ShapeConfig(users=8, ramp_seconds=0)) == (8, 5.0)


@pytest.mark.parametrize(
    ("raw", "bounds"),
    [("", (0.5, 2.0)), ("0", (0.0, 0.0)), ("1,3", (1.0, 3.0)), (" 0.2 , 0.4 ", (0.2, 0.4))],
)
def test_wait_bounds(raw, bounds):
    assert wait_bounds(raw) == bounds


@pytest.mark.parametrize("raw", ["soon", "3,1", "-1"])
def test_wait_bounds_rejects_nonsense(raw):
    with pytest.raises(ValueError, match="MESHLAB_WAIT"):
        wait_bounds(raw)
