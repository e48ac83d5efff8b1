"""Who served a response, and what went wrong on the way: pure functions, no I/O, no Locust.

Primitives:

- ``parse_served_by(header)`` -> the ``x-served-by`` chain, e.g.
  ``("productpage-v2", "details-v1", "reviews-v2", "ratings-v1")`` (DESIGN.md: every
  productpage response names, in call order, the ``service-version`` of every pod that answered).
- ``infer_flag(status, headers, body)`` -> Envoy's response flag of a *local reply* (an answer
  the gateway made itself: 404 NR, 503 UH/UO/UF/NC/FI, 504 UT): from the lab's
  ``x-meshlab-response-flags`` header, else read from the reply's body (another proxy).
- ``attribute(...)`` -> an ``Attribution``: the chain, the version of each service, the
  outcome (``ok``, ``reviews-unavailable``, ``details-unavailable``, ``local-reply``,
  ``error``), the flag, and whether the response was slow (an injected delay).
- ``Attribution.labels()`` -> the tally keys one response adds to the live view.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mesh.headers import RESPONSE_FLAGS

SERVED_BY = "x-served-by"
SERVICES: tuple[str, ...] = ("productpage", "details", "reviews", "ratings")

# Bookinfo's degradation texts (services/productpage/app.py): the page stays 200 and the
# failed section says so; the JSON API answers this error with the upstream's status.
REVIEWS_UNAVAILABLE = "Sorry, product reviews are currently unavailable"
DETAILS_UNAVAILABLE = "Sorry, product details are currently unavailable"

# An injected delay in the scenarios is 2.5 s; anything past 2 s is "slow" on this lab, whose
# pages take tens of milliseconds.
DEFAULT_SLOW_SECONDS = 2.0

# Envoy's local-reply bodies (mesh/routing/decision.py, Lab decision 8) -> response flag.
# Order matters: the overflow and connect-failure bodies share a prefix.
_BODY_FLAGS: tuple[tuple[str, str], ...] = (
    ("fault filter abort", "FI"),
    ("no healthy upstream", "UH"),
    ("reset reason: overflow", "UO"),
    ("reset reason: connection failure", "UF"),
    ("upstream request timeout", "UT"),
    ("no route:", "NR"),  # the lab's 404 NR names the Host (mesh/routing/select.py)
)

# The lab's sidecars report the flag of their local replies in a header (mesh.headers
# RESPONSE_FLAGS); honour it, or another proxy's, rather than guessing from the body.
FLAG_HEADERS: tuple[str, ...] = (RESPONSE_FLAGS, "x-envoy-response-flags", "x-response-flags")


def parse_served_by(header: str | None) -> tuple[str, ...]:
    """``"productpage-v1, details-v1,reviews-v2"`` -> ``("productpage-v1", "details-v1",
    "reviews-v2")``; missing or empty -> ``()``."""
    if not header:
        return ()
    return tuple(part.strip() for part in header.split(",") if part.strip())


def split_entry(entry: str) -> tuple[str, str]:
    """``"reviews-v2"`` -> ``("reviews", "v2")``; an entry without a version -> ``(entry, "")``.

    The version is the last ``-`` part (service names may contain hyphens themselves)."""
    service, sep, version = entry.rpartition("-")
    if not sep or not service or not version.startswith("v"):
        return entry, ""
    return service, version


def versions_of(chain: tuple[str, ...]) -> dict[str, str]:
    """Service -> version of its first appearance in the chain (productpage comes first)."""
    versions: dict[str, str] = {}
    for entry in chain:
        service, version = split_entry(entry)
        versions.setdefault(service, version)
    return versions


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup on any mapping (Locust's and requests' are already
    case-insensitive, a plain dict in the tests is not)."""
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def infer_flag(status: int, headers: Mapping[str, str], body: str) -> str:
    """The response flag of a local reply, or ``""`` when an app answered (it carries
    ``x-served-by``) or nothing identifies the reply."""
    for name in FLAG_HEADERS:
        reported = _header(headers, name)
        if reported and reported != "-":
            return reported.strip()
    if _header(headers, SERVED_BY):
        return ""  # an app answered: whatever failed was behind it, visible in the chain
    if (_header(headers, "x-envoy-overloaded") or "").lower() == "true":
        return "UO"
    for text, flag in _BODY_FLAGS:
        if text in body:
            return flag
    if status == 404 and not body.strip():
        return "NR"  # no route: Envoy's 404 has an empty body
    if status == 503 and not body.strip():
        return "NC"  # no cluster (a subset that is not defined)
    return ""


@dataclass(frozen=True, slots=True)
class Attribution:
    """What one response tells about the mesh."""

    status: int
    chain: tuple[str, ...] = ()
    versions: Mapping[str, str] = field(default_factory=dict)
    outcome: str = "ok"
    """``ok``; ``reviews-unavailable`` / ``details-unavailable`` (the page degraded: an abort,
    a timeout or a failing instance behind productpage); ``local-reply`` (the gateway answered
    itself, see ``flag``); ``error`` (an app answered with a 5xx, or no response at all)."""
    flag: str = ""
    slow: bool = False
    elapsed: float = 0.0

    @property
    def productpage(self) -> str:
        return self.versions.get("productpage", "")

    @property
    def reviews(self) -> str:
        return self.versions.get("reviews", "")

    @property
    def details(self) -> str:
        return self.versions.get("details", "")

    @property
    def failed(self) -> bool:
        return self.outcome != "ok"

    def labels(self) -> list[str]:
        """Tally keys: ``productpage-v1``... (one per service that answered), the outcome
        when not ok, ``flag:UH`` for a local reply, ``status:503`` for an error status,
        ``slow`` for a delayed response."""
        keys = [f"{service}-{version}" for service, version in self.versions.items() if version]
        if self.outcome != "ok":
            keys.append(self.outcome)
        if self.flag:
            keys.append(f"flag:{self.flag}")
        if self.status >= 400 or self.status == 0:
            keys.append(f"status:{self.status}")
        if self.slow:
            keys.append("slow")
        return keys


def attribute(
    status: int,
    headers: Mapping[str, str],
    body: str,
    elapsed: float = 0.0,
    *,
    expects: tuple[str, ...] = (),
    slow_seconds: float = DEFAULT_SLOW_SECONDS,
) -> Attribution:
    """Attribute one response.

    ``expects`` names the services the request should reach behind productpage
    (``("details", "reviews")`` for ``/productpage``, ``("reviews",)`` for the reviews API):
    a page that is 200 but lacks one of them degraded, which is how an injected abort shows
    through productpage. ``status`` 0 means no response (connection error).
    """
    chain = parse_served_by(_header(headers, SERVED_BY))
    versions = versions_of(chain)
    slow = elapsed >= slow_seconds
    if status == 0:
        return Attribution(0, chain, versions, "error", "", slow, elapsed)
    if not chain:
        flag = infer_flag(status, headers, body)
        outcome = "ok" if status < 400 else ("local-reply" if flag else "error")
        return Attribution(status, chain, versions, outcome, flag, slow, elapsed)
    outcome = "ok"
    # Reviews first: it is the service the fault scenarios target.
    if "reviews" in expects and (REVIEWS_UNAVAILABLE in body or "reviews" not in versions):
        outcome = "reviews-unavailable"
    elif "details" in expects and (DETAILS_UNAVAILABLE in body or "details" not in versions):
        outcome = "details-unavailable"
    elif status >= 500:
        outcome = "error"
    flag = infer_flag(status, headers, body)
    return Attribution(status, chain, versions, outcome, flag, slow, elapsed)
