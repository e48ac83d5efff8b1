"""The workshop's exercises, as data, and how a trainee's answer is compared: pure, no I/O.

An exercise asks the trainee to write the YAML of one strategy themselves; the expected
outcome is the lab's own answer, ``scenarios/<name>.yaml``. ``make check-<name> FILE=mine.yaml``
(``loadtests/check.py``) routes the same probes through the trainee's file and the answer
(each on top of the baseline, ``scenarios/reset.yaml``) with ``meshctl route`` and says which
differ; exercises whose promise needs live traffic (an ejection, a pod's readiness) are then
applied to the running lab and proved by ``make verify-<name>``'s checks.

Primitives: ``Probe`` (one ``meshctl route`` question), ``Exercise``, ``EXERCISES`` (by name,
in the module's order), ``outcome_shares(result)`` (a ``meshctl route -o json`` answer as
shares), ``differences(expected, yours, n)`` (what differs beyond statistical tolerance),
``describe(shares)``. Standard library only: ``mesh/lab/dispatch.py`` reads ``EXERCISES`` on a
host without the venv.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadtests.strategies import LIVE_HOST, TEST_HOST, TESTER

# Two-sided 99.9 % normal quantile (the lab's statistical tolerance everywhere).
Z_999 = 3.29
SIMULATED_REQUESTS = 10_000
PRODUCTPAGE = "app=productpage,version=v1"  # the caller of details and reviews
GATEWAY = "bookinfo-gateway"


@dataclass(frozen=True)
class Probe:
    """One ``meshctl route`` question: a request, by whom, through which proxy."""

    title: str
    host: str
    path: str = "/"
    headers: tuple[str, ...] = ()
    gateway: str = ""  # route as this Gateway's proxy; "" = productpage's sidecar
    source_labels: str = PRODUCTPAGE

    def argv(self, requests: int = SIMULATED_REQUESTS, seed: int = 1) -> list[str]:
        """The ``meshctl route`` arguments after the ``-f`` files."""
        args = ["--host", self.host, "--path", self.path, "-n", str(requests)]
        args += ["--seed", str(seed), "-o", "json"]
        for header in self.headers:
            args += ["-H", header]
        if self.gateway:
            return [*args, "--gateway", self.gateway]
        return [*args, "--source-labels", self.source_labels]


@dataclass(frozen=True)
class Exercise:
    name: str
    task: str  # what the trainee is asked to write
    probes: tuple[Probe, ...] = ()
    verify: str = ""  # the verify strategy proving it with traffic ("" = routing is enough)


def _reviews(user: str | None) -> Probe:
    who = f"end-user: {user}" if user else "no login"
    return Probe(f"reviews, {who}", "reviews", "/reviews/0", (f"end-user: {user}",) if user else ())


def _page(host: str, cookie: str = "") -> Probe:
    title = f"gateway, Host {host}" + (f", cookie {cookie}" if cookie else "")
    headers = (f"cookie: {cookie}",) if cookie else ()
    return Probe(title, host, "/productpage", headers, GATEWAY)


USERS = (_reviews(TESTER), _reviews(None), _reviews("jason"))
BOTH_HOSTS = (_page(LIVE_HOST), _page(TEST_HOST))

EXERCISES: dict[str, Exercise] = {
    e.name: e
    for e in (
        Exercise(
            "dark-launch",
            "Send the user tester to reviews v2; everyone else stays on v1.",
            USERS,
        ),
        Exercise(
            "delay",
            "Delay every reviews call of the user tester by 2.5 s (and send them to v2).",
            USERS,
            verify="delay",  # meshctl route counts delays; how long they are needs traffic
        ),
        Exercise(
            "abort",
            "Abort half of the user tester's reviews calls with HTTP 503.",
            USERS,
        ),
        Exercise(
            "blue-green",
            "bookinfo.local (live) on productpage v1, test.bookinfo.local (test) on v2.",
            BOTH_HOSTS,
        ),
        Exercise(
            "blue-green-switch",
            "Swap them: bookinfo.local on v2, test.bookinfo.local on v1.",
            BOTH_HOSTS,
        ),
        Exercise(
            "canary-70-30",
            "At the gateway, 70 % of Bookinfo pages from productpage v1, 30 % from v2.",
            (_page(LIVE_HOST),),
        ),
        Exercise(
            "canary-5-95",
            "Shift the canary: 5 % v1, 95 % v2.",
            (_page(LIVE_HOST),),
        ),
        Exercise(
            "canary-sticky",
            "Cookie product-page=v2 pins productpage v2; everyone else 70/30.",
            (
                _page(LIVE_HOST, "product-page=v2"),
                _page(LIVE_HOST, "session=abc; product-page=v2"),
                _page(LIVE_HOST, "product-page=v1"),
                _page(LIVE_HOST),
            ),
        ),
        Exercise(
            "circuit-breaker",
            "Route details to v2 and eject an instance after 2 consecutive errors.",
            (Probe("details", "details", "/details/0"),),
            verify="circuit-breaker",
        ),
        Exercise(
            "readiness",
            "Route reviews like a Kubernetes Service: every ready pod, no subset.",
            (_reviews(None),),
            verify="readiness",
        ),
    )
}


def outcome_shares(result: Mapping[str, Any]) -> dict[str, float]:
    """``meshctl route -o json`` -> ``{"reviews/v2": 0.5, "aborted 503": 0.5, ...}``
    (destinations by name, then aborts, delays, no-route and other local replies)."""
    counts: dict[str, int] = {str(k): int(v) for k, v in (result.get("destinations") or {}).items()}
    counts.update({f"aborted {k}": int(v) for k, v in (result.get("aborted") or {}).items()})
    counts["delayed"] = int(result.get("delayed") or 0)
    counts["404 no route"] = int(result.get("no_route") or 0)
    local = result.get("local_replies") or {}
    counts.update({f"local reply {k}": int(v) for k, v in local.items()})
    total = int(result["requests"])
    return {key: count / total for key, count in counts.items() if count}


def tolerance(share: float, requests: int) -> float:
    """How far two shares of independent runs of ``requests`` may differ at 99.9 % when the
    true share is ``share`` (fault percentages are random; weights are exact, share 0 or 1
    and exact splits give ~0)."""
    return Z_999 * math.sqrt(2 * share * (1 - share) / requests) + 1 / requests


def differences(
    expected: Mapping[str, float], yours: Mapping[str, float], requests: int
) -> list[str]:
    """One line per outcome whose share differs beyond tolerance; empty: the same."""
    lines = []
    for key in sorted(set(expected) | set(yours)):
        want, got = expected.get(key, 0.0), yours.get(key, 0.0)
        if abs(want - got) > tolerance(want, requests):
            lines.append(f"{key}: expected {want:.1%}, yours {got:.1%}")
    return lines


def describe(shares: Mapping[str, float]) -> str:
    """``reviews/v2 50.0%, aborted 503 50.0%`` (largest first)."""
    if not shares:
        return "nothing"
    ordered = sorted(shares.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{key} {share:.1%}" for key, share in ordered)
