"""Readiness probing of the pod's own app, with Kubernetes' semantics and defaults.

Primitives: ``ProbeSpec`` (``httpGet`` path, ``initialDelaySeconds`` 0, ``periodSeconds`` 10,
``timeoutSeconds`` 1, ``failureThreshold`` 3, ``successThreshold`` 1) and ``Prober``, whose
state machine is the kubelet's: a container starts *not ready*; ``successThreshold``
consecutive successes make it ready, ``failureThreshold`` consecutive failures make it
unready. A probe succeeds on a status 200-399 within the timeout; a refused connection, a
timeout or any other status is a failure. ``probe_once`` is a tiny HTTP/1.0 GET on a fresh
connection (as the kubelet does), separate from the data plane's pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    path: str = "/health"
    port: int = 0
    host: str = "127.0.0.1"
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    failure_threshold: int = 3
    success_threshold: int = 1


class ProbeState:
    """Kubelet readiness bookkeeping: consecutive results against the thresholds."""

    def __init__(self, spec: ProbeSpec) -> None:
        self.spec = spec
        self.ready = False
        self.successes = 0
        self.failures = 0
        self.last_error: str | None = None

    def observe(self, ok: bool, error: str | None = None) -> bool:
        """Feed one probe result; return True when readiness changed."""
        before = self.ready
        if ok:
            self.successes += 1
            self.failures = 0
            self.last_error = None
            if not self.ready and self.successes >= self.spec.success_threshold:
                self.ready = True
        else:
            self.failures += 1
            self.successes = 0
            self.last_error = error
            if self.ready and self.failures >= self.spec.failure_threshold:
                self.ready = False
        return self.ready != before


async def probe_once(spec: ProbeSpec) -> tuple[bool, str | None]:
    """One ``httpGet``: (success, reason for a failure)."""
    writer = None
    try:
        async with asyncio.timeout(spec.timeout):
            reader, writer = await asyncio.open_connection(spec.host, spec.port)
            writer.write(
                f"GET {spec.path} HTTP/1.0\r\nHost: {spec.host}:{spec.port}\r\n"
                f"User-Agent: kube-probe/1.30\r\n\r\n".encode()
            )
            line = await reader.readline()
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            return False, f"bad response {line[:40]!r}"
        status = int(parts[1])
        if 200 <= status < 400:
            return True, None
        return False, f"HTTP probe failed with statuscode: {status}"
    except TimeoutError:
        return False, "probe timed out"
    except OSError as exc:
        return False, f"probe failed: {exc.strerror or exc}"
    finally:
        if writer is not None:
            writer.close()


async def run_prober(spec: ProbeSpec, state: ProbeState, on_change: Callable[[], None]) -> None:
    """Probe forever at ``period``, after ``initial_delay``; call ``on_change`` on a flip."""
    await asyncio.sleep(spec.initial_delay)
    while True:
        ok, error = await probe_once(spec)
        if state.observe(ok, error):
            on_change()
        await asyncio.sleep(spec.period)
