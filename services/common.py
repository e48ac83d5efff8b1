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
  (retry on anything but 200, never raise), recording what the upstream reported in
  ``x-served-by`` so this service can list it after its own name.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from typing import Any

import requests
from flask import Flask, Response, current_app, g, jsonify, request

from mesh.headers import PROPAGATED_HEADERS, SERVED_BY

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
    app.before_request(_apply_knobs)
    app.after_request(_add_served_by)
    app.add_url_rule(HEALTH_PREFIX, "health", _health)
    app.add_url_rule(f"{HEALTH_PREFIX}/toggle", "health_toggle", _toggle, methods=["POST"])


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
    return response


def served_by_chain() -> list[str]:
    """This service, then what each upstream reported, in call order."""
    return [app_state().served_by, *g.get("upstream_served_by", [])]


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
    finally used contributes to x-served-by.
    """
    session = app_state().http
    reply, served_by = Reply(500), ""
    for _ in range(max(1, attempts)):
        try:
            response = session.get(url, headers=headers, timeout=timeout)
        except requests.RequestException:
            reply, served_by = Reply(500), ""
            continue
        served_by = response.headers.get(SERVED_BY, "")
        body = _json_or_none(response)
        # A 200 whose body is not JSON is as useless as no answer (Bookinfo would crash: 500).
        reply = Reply(
            500 if response.status_code == 200 and body is None else response.status_code, body
        )
        if reply.ok:
            break
    hops = [hop.strip() for hop in served_by.split(",") if hop.strip()]
    g.setdefault("upstream_served_by", []).extend(hops)
    return reply


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
