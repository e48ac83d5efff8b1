"""What every Bookinfo service shares: settings, failure knobs, health, propagation, x-served-by.

Primitives:

- ``init_service(app, service, config, defaults)``: fills ``app.config`` (defaults, then the
  environment, then the ``config`` dict), builds the per-app ``AppState`` and installs the knobs
  (``FAIL_MODE``, ``EXTRA_LATENCY_MS``, ``START_UNREADY_SECONDS``), the ``/health`` endpoints
  and the ``x-served-by`` response header.
- ``AppState``: the knobs' mutable state, one per app in ``app.extensions`` (readiness flag,
  failure RNG) and the app's ``requests`` session.
- ``forward_headers()``: the inbound headers named in ``mesh.headers.PROPAGATED_HEADERS``.
- ``fetch(url, headers, timeout, attempts)`` -> ``Reply``: one upstream call the Bookinfo way
  (retry on anything but 200, never raise), recording the ``Hop``s it went through so this
  service can list them after its own name.
- ``Hop``: one service on the served-by chain as its caller saw it: name, the time the caller
  measured, and for a failed hop its status and the sidecar's response flag (``reviews ✗ 503
  FI``). ``hops()`` is this request's list; ``x-served-by`` names the hops that answered,
  ``server-timing`` carries every hop with its time (and failure) to the caller's caller.
"""

from __future__ import annotations

import os
import random
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from flask import Flask, Response, current_app, g, jsonify, request

from mesh.headers import PROPAGATED_HEADERS, RESPONSE_FLAGS, SERVED_BY

EXTENSION = "meshlab"

# Knobs every service understands; each service adds its own (upstream URLs, timeouts).
COMMON_DEFAULTS: dict[str, Any] = {
    "SERVICE_VERSION": "v1",
    "POD_NAME": "",
    "FAIL_MODE": "",
    "FAIL_SEED": "",
    "START_UNREADY_SECONDS": 0.0,
    "EXTRA_LATENCY_MS": 0.0,
}

# Paths the knobs leave alone: a probe must see readiness, not injected failures or latency.
HEALTH_PREFIX = "/health"


@dataclass(frozen=True)
class FailMode:
    """``FAIL_MODE``: answer ``status`` to a ``fraction`` of non-health requests."""

    status: int
    fraction: float = 1.0

    @classmethod
    def parse(cls, text: str) -> FailMode | None:
        """``""`` -> off, ``"503"`` -> always 503, ``"503:0.5"`` -> 503 half of the time."""
        text = text.strip()
        if not text:
            return None
        status_text, _, fraction_text = text.partition(":")
        try:
            mode = cls(int(status_text), float(fraction_text) if fraction_text else 1.0)
        except ValueError:
            raise ValueError(f"FAIL_MODE {text!r}: expected STATUS or STATUS:FRACTION") from None
        if not 100 <= mode.status <= 599:
            raise ValueError(f"FAIL_MODE {text!r}: status must be 100..599")
        if not 0.0 <= mode.fraction <= 1.0:
            raise ValueError(f"FAIL_MODE {text!r}: fraction must be within 0..1")
        return mode


@dataclass
class AppState:
    """The knobs' per-app state and the HTTP client (gunicorn threads share it, hence the lock)."""

    served_by: str
    fail_mode: FailMode | None
    rng: random.Random
    ready_at: float
    http: requests.Session
    toggled_ready: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def readiness(self) -> tuple[bool, str]:
        if not self.toggled_ready:
            return False, "readiness toggled off"
        remaining = self.ready_at - time.monotonic()
        if remaining > 0:
            return False, f"starting, ready in {remaining:.1f} s"
        return True, ""


@dataclass(frozen=True)
class Reply:
    """An upstream outcome as Bookinfo's productpage sees it: status 500 when nothing answered."""

    status: int
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200


# W3C Server-Timing, one entry per hop: ``details-v1;dur=8.1, reviews;dur=1.2;desc="503 FI"``.
SERVER_TIMING = "server-timing"
_TIMING_ENTRY = re.compile(r'\s*([^;,\s]+)((?:\s*;\s*[a-z]+=(?:"[^"]*"|[^;,]*))*)')
_TIMING_PARAM = re.compile(r';\s*([a-z]+)=("[^"]*"|[^;,]*)')


@dataclass(frozen=True, slots=True)
class Hop:
    """One service on the served-by chain, as its caller saw it.

    ``name`` is what the answering pod called itself (``reviews-v2``), or the service asked
    for when no app answered (``reviews``: the caller's sidecar replied itself, or nothing
    did). ``failure`` is empty for a hop that answered 200, else ``"503 FI"`` (status and the
    sidecar's response flag), ``"503"`` (an app's error, no flag) or ``"no answer"``.
    ``retried`` names the failed tries before the one shown (productpage tries reviews twice).
    """

    name: str
    ms: float | None = None
    failure: str = ""
    retried: tuple[str, ...] = ()
    answered: bool = True  # an app answered: counted in x-served-by

    @property
    def ok(self) -> bool:
        return not self.failure

    @property
    def time_text(self) -> str:
        """``8 ms`` / ``2.51 s`` (a delay reads as seconds), ``""`` when not measured."""
        if self.ms is None:
            return ""
        return f"{self.ms / 1000:.2f} s" if self.ms >= 1000 else f"{self.ms:.0f} ms"

    def timing(self) -> str:
        entry = self.name if self.ms is None else f"{self.name};dur={self.ms:.1f}"
        return f'{entry};desc="{self.failure}"' if self.failure else entry

    @staticmethod
    def parse_timing(header: str, answered: set[str]) -> list[Hop]:
        """The hops of an upstream's ``server-timing``; ``answered``: its x-served-by names."""
        found = []
        for match in _TIMING_ENTRY.finditer(header):
            params = {k: v.strip('"') for k, v in _TIMING_PARAM.findall(match.group(2))}
            try:
                ms = float(params["dur"]) if "dur" in params else None
            except ValueError:
                ms = None
            name = match.group(1)
            found.append(Hop(name, ms, params.get("desc", ""), (), name in answered))
        return found


def app_state() -> AppState:
    return current_app.extensions[EXTENSION]


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Environment values are strings; give them the type of the default."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    if isinstance(default, bool):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    try:
        return type(default)(value)
    except ValueError:
        raise ValueError(f"{key}={value!r}: expected {type(default).__name__}") from None


def load_settings(app: Flask, defaults: dict[str, Any], config: dict[str, Any] | None) -> None:
    """Defaults, overridden by the environment, overridden by the factory's ``config``.

    An empty variable counts as unset (compose's ``${VAR:-}`` passes empty strings through).
    """
    for key, default in defaults.items():
        value = os.environ.get(key) or default
        if config and key in config:
            value = config[key]
        app.config[key] = _coerce(key, default, value)
    # Keys the service does not know (TESTING, ...) pass through unchanged.
    app.config.update({k: v for k, v in (config or {}).items() if k not in defaults})


def make_session() -> requests.Session:
    """A keep-alive client that honours HTTP_PROXY (the sidecar) and stores no cookies.

    The session is shared by every user of this app, so a cookie an upstream sets must not be
    replayed on another user's call; the inbound ``cookie`` header is forwarded explicitly.
    """
    session = requests.Session()
    session.trust_env = True
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def init_service(
    app: Flask, service: str, config: dict[str, Any] | None, defaults: dict[str, Any]
) -> None:
    """Load settings and install the knobs, health endpoints and x-served-by on ``app``."""
    load_settings(app, {"SERVICE_NAME": service, **COMMON_DEFAULTS, **defaults}, config)
    cfg = app.config
    seed = str(cfg["FAIL_SEED"])
    state = AppState(
        served_by=f"{cfg['SERVICE_NAME']}-{cfg['SERVICE_VERSION']}",
        fail_mode=FailMode.parse(str(cfg["FAIL_MODE"])),
        rng=random.Random(int(seed)) if seed else random.Random(),
        ready_at=time.monotonic() + float(cfg["START_UNREADY_SECONDS"]),
        http=make_session(),
    )
    if not cfg["POD_NAME"]:
        cfg["POD_NAME"] = os.environ.get("HOSTNAME") or socket.gethostname()
    app.extensions[EXTENSION] = state
    app.json.sort_keys = False  # keep Bookinfo's field order ("id" first)
    app.before_request(_start_clock)
    app.before_request(_apply_knobs)
    app.after_request(_add_served_by)
    app.add_url_rule(HEALTH_PREFIX, "health", _health)
    app.add_url_rule(f"{HEALTH_PREFIX}/toggle", "health_toggle", _toggle, methods=["POST"])


def _start_clock() -> None:
    g.started = time.perf_counter()


def elapsed_ms() -> float:
    """Milliseconds since this request started (this service's own hop time)."""
    return (time.perf_counter() - g.get("started", time.perf_counter())) * 1000


def _apply_knobs() -> Response | None:
    if request.path.startswith(HEALTH_PREFIX):
        return None
    latency_ms = float(current_app.config["EXTRA_LATENCY_MS"])
    if latency_ms > 0:
        time.sleep(latency_ms / 1000)
    state = app_state()
    mode = state.fail_mode
    if mode and state.rng.random() < mode.fraction:  # random() < 1.0 always holds
        body = jsonify(error=f"failure injected by FAIL_MODE on {state.served_by}")
        body.status_code = mode.status
        return body
    return None


def _health() -> tuple[Response, int]:
    state = app_state()
    ready, reason = state.readiness()
    body = {
        "status": "Ready" if ready else "NotReady",
        "service": current_app.config["SERVICE_NAME"],
        "version": current_app.config["SERVICE_VERSION"],
        "pod": current_app.config["POD_NAME"],
    }
    if reason:
        body["reason"] = reason
    return jsonify(body), 200 if ready else 503


def _toggle() -> tuple[Response, int]:
    """Flip readiness, or set it with ``?ready=true|false`` (form field works too)."""
    state = app_state()
    wanted = request.values.get("ready")
    with state.lock:
        if wanted is None:
            state.toggled_ready = not state.toggled_ready
        else:
            state.toggled_ready = _coerce("ready", True, wanted)
    return _health()


def _add_served_by(response: Response) -> Response:
    response.headers[SERVED_BY] = ", ".join(served_by_chain())
    if timing := ", ".join(hop.timing() for hop in hops()):
        response.headers[SERVER_TIMING] = timing
    return response


def hops() -> list[Hop]:
    """The hops of this request's upstream calls so far, in call order (nested ones after
    the hop that made them)."""
    return g.setdefault("hops", [])


def served_by_chain() -> list[str]:
    """This service, then every upstream pod that answered, in call order."""
    return [app_state().served_by, *(hop.name for hop in hops() if hop.answered)]


def forward_headers(skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """The inbound request's headers that Bookinfo propagates (tracing, end-user, cookie...),
    less those named in ``skip``."""
    return {
        name: request.headers[name]
        for name in PROPAGATED_HEADERS
        if name in request.headers and name not in skip
    }


def fetch(url: str, headers: dict[str, str], timeout: float, attempts: int = 1) -> Reply:
    """GET ``url`` up to ``attempts`` times until a 200 with a JSON body; never raises.

    Like Bookinfo, a failed attempt (error status, timeout, refused connection) is retried and
    the last status is reported, or 500 when nothing answered. Only the response that was
    finally used contributes to x-served-by; the hops record the call's time (every try) and
    the failed tries before it.
    """
    session = app_state().http
    service = url.split("//", 1)[-1].split("/", 1)[1].split("/", 1)[0]  # .../<service>/<id>
    started = time.perf_counter()
    reply, response, failure = Reply(500), None, "no answer"
    failures: list[str] = []
    for attempt in range(max(1, attempts)):
        if attempt:
            failures.append(failure)
        try:
            response = session.get(url, headers=headers, timeout=timeout)
        except requests.Timeout:
            reply, response, failure = Reply(500), None, "timeout"
            continue
        except requests.RequestException:
            reply, response, failure = Reply(500), None, "no answer"
            continue
        body = _json_or_none(response)
        # A 200 whose body is not JSON is as useless as no answer (Bookinfo would crash: 500).
        reply = Reply(
            500 if response.status_code == 200 and body is None else response.status_code, body
        )
        flags = response.headers.get(RESPONSE_FLAGS, "")
        failure = "" if reply.ok else f"{reply.status} {flags}".strip()
        if reply.ok:
            break
    ms = (time.perf_counter() - started) * 1000
    record = hops()
    chain = _served_by(response)
    if not chain:
        # Nobody answered, the caller's sidecar replied itself (flag FI, UH...), or an app
        # that does not name itself: the hop is the service asked for.
        record.append(Hop(service, ms, failure, tuple(failures), False))
        return reply
    record.append(Hop(chain[0], ms, failure, tuple(failures)))
    assert response is not None
    timing = response.headers.get(SERVER_TIMING)
    if timing:
        record.extend(Hop.parse_timing(timing, set(chain[1:])))
    else:  # an upstream that reports no timing: its chain, untimed
        record.extend(Hop(name) for name in chain[1:])
    return reply


def _served_by(response: requests.Response | None) -> list[str]:
    header = response.headers.get(SERVED_BY, "") if response is not None else ""
    return [hop.strip() for hop in header.split(",") if hop.strip()]


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
