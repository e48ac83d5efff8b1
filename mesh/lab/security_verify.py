"""The security module's verifies (``make verify-mtls``, ``make verify-authz``): what to
apply, what to expect, how to judge. Standard library only (the dispatcher runs it on the
compose lab's host, which has no venv).

- ``verify-mtls`` (profile ``security``): istio.io's reachability matrix — ``sleep`` in foo,
  bar and legacy curls ``httpbin`` in foo, bar and legacy (``CURL``, through ``make exec``'s
  path: the pod's own sidecar, or none) — at every stage of ``MTLS_STAGES``. The expectation
  is computed by ``meshctl reachability -o json`` from the applied config
  (``mesh.security.mtls``); ``matrix_lines`` compares and prints it as istio.io does
  (``sleep.legacy to httpbin.foo: 000``).
- ``verify-authz`` (profile ``istio``): istio.io's "Authorization for HTTP traffic" cascade,
  the documented page at every step of ``AUTHZ_STAGES`` (``page_checks``).
- ``verify-rotation`` (profile ``security``, ``MESH_CERT_TTL`` at most 10 min):
  ``scenarios/rotation.yaml`` routes the gateway to httpbin.foo; ``Load`` keeps requests
  going while httpbin.foo's certificate is renewed ``ROTATIONS`` times (its serial in
  ``status/manager.json``); PASS with no failed request.

``main`` runs them (``python3 -m mesh.lab.security_verify mtls|authz|rotation``): they find
the lab and apply the stages with ``mesh.lab.dispatch``'s helpers.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mesh.lab.dispatch import (
    ROOT,
    Env,
    LabChoiceError,
    apply_scenario,
    find_lab,
    gateway_url,
    lab_sh,
    need_venv,
)

MTLS_STAGES = (
    "mtls-permissive",
    "mtls-strict-namespace",
    "mtls-strict",
    "mtls-workload",
    "mtls-port-level",
    "mtls-precedence",
)
AUTHZ_STAGES = ("authz-deny-all", "authz-productpage", "authz-details-reviews", "authz-ratings")
# istio.io's: curl "http://httpbin.${to}:8000/ip" -s -o /dev/null -w "%{http_code}".
CURL = "curl 'http://{host}:{port}/ip' -s -o /dev/null -w '%{{http_code}}' --max-time 10"
PAGES = 12  # reviews v1, v2, v3 in turn: each version several times

DETAILS_ERROR = "Error fetching product details"
REVIEWS_ERROR = "Error fetching product reviews"
RATINGS_ERROR = "Ratings service is currently unavailable"
STARS = "data-stars="
DENIED = "RBAC: access denied"


def curl_command(cell: Mapping[str, Any]) -> str:
    return CURL.format(host=cell["host"], port=cell["port"])


def measured_code(stdout: str) -> str:
    """curl's ``%{http_code}`` (``000`` when the connection failed: nothing printed else)."""
    text = stdout.strip()[-3:]
    return text if len(text) == 3 and text.isdigit() else "000"


def matrix_lines(
    stage: str, expected: Sequence[Mapping[str, Any]], measured: Mapping[tuple[str, str], str]
) -> tuple[list[str], int]:
    """istio.io's matrix lines for one stage, each with PASS/FAIL; and the failure count."""
    lines = [f"{stage} (scenarios/{stage}.yaml):"]
    failures = 0
    for cell in expected:
        got = measured.get((cell["from"], cell["host"]), "?")
        ok = got == cell["expect"]
        failures += not ok
        verdict = "PASS" if ok else f"FAIL (expected {cell['expect']}: {cell['reason']})"
        lines.append(f"  {cell['from']} to {cell['host']}: {got}   {verdict}")
    return lines, failures


def page_checks(stage: str, pages: Sequence[tuple[int, str]]) -> list[tuple[str, bool]]:
    """(check, passed) for the pages one step of the authz-http task must give."""
    statuses = {status for status, _ in pages}
    if stage == "authz-deny-all":
        return [
            ("every /productpage is 403", statuses == {403}),
            (f"body {DENIED!r}", all(body.strip() == DENIED for _, body in pages)),
        ]
    ok = [("every /productpage is 200", statuses == {200})]
    details = [DETAILS_ERROR in body for _, body in pages]
    reviews = [REVIEWS_ERROR in body for _, body in pages]
    ratings = [RATINGS_ERROR in body for _, body in pages]
    stars = [STARS in body for _, body in pages]
    if stage == "authz-productpage":
        return ok + [
            (f"every page says {DETAILS_ERROR!r}", all(details)),
            (f"every page says {REVIEWS_ERROR!r}", all(reviews)),
        ]
    if stage == "authz-details-reviews":
        return ok + [
            ("details and reviews shown on every page", not any(details) and not any(reviews)),
            (f"reviews v2/v3 say {RATINGS_ERROR!r}", any(ratings)),
            ("no stars anywhere", not any(stars)),
        ]
    if stage == "authz-ratings":
        return ok + [
            ("details and reviews shown on every page", not any(details) and not any(reviews)),
            ("stars from reviews v2/v3", any(stars)),
            ("no ratings error", not any(ratings)),
        ]
    raise ValueError(f"no authz stage {stage!r}")


# ---------------------------------------------------------------- rotation under load

ROTATIONS = 3
ROTATION_POD = "httpbin.foo"
MAX_DEMO_TTL = 600.0  # seconds: longer certificates make the demo wait too long


class Load:
    """Steady load: ``workers`` threads GET ``url`` back to back until ``stop()``; every
    answer but a 200 (or a connection error) is a failure, kept with its reason."""

    def __init__(self, url: str, workers: int = 4) -> None:
        import threading

        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        import urllib.error
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while not self._stop.is_set():
            try:
                with opener.open(self.url, timeout=10) as reply:
                    reply.read()
                    failure = None if reply.status == 200 else f"HTTP {reply.status}"
            except urllib.error.HTTPError as exc:
                failure = f"HTTP {exc.code}"
            except OSError as exc:
                failure = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if failure is None:
                    self.ok += 1
                else:
                    self.failures.append(failure)


def issued_serial(status: Mapping[str, Any], pod: str) -> str | None:
    """The serial of ``pod``'s newest certificate in ``status/manager.json``."""
    issued = (status.get("ca") or {}).get("issued") or {}
    entry = issued.get(pod)
    return str(entry.get("serial")) if isinstance(entry, Mapping) else None


# ---------------------------------------------------------------- the verifies (dispatch)


def capture(argv: Sequence[str], env: Env) -> tuple[int, str]:
    """Run ``argv`` with ``MESH_DIR`` set; (exit status, its stdout)."""
    child_env = {**os.environ, "MESH_DIR": str(env.mesh_dir), "MESHLAB_PROJECT": env.project}
    done = subprocess.run(
        list(argv), env=child_env, cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout


def verify_mtls(args: argparse.Namespace, env: Env) -> int:
    """istio.io's reachability matrix at every migration stage: expected (meshctl
    reachability) vs measured (curl in each sleep pod)."""
    lab = find_lab(env)
    if lab == "local":
        need_venv(env)
    expect = [env.tool("meshctl"), "reachability", "-o", "json"]
    if lab == "compose":
        expect = lab_sh("compose", "exec", "-T", "manager", "meshctl", "reachability", "-o", "json")
    failures = 0
    for stage in args.stages or MTLS_STAGES:
        code = apply_scenario(lab, env, stage)
        if code:
            return code
        code, out = capture(expect, env)
        if code or not out.strip().startswith("["):
            raise LabChoiceError("meshctl reachability failed: is this the security profile?")
        cells = json.loads(out)
        if not cells:
            raise LabChoiceError("no sleep/httpbin pods: start the lab with PROFILE=security")
        measured = {}
        for cell in cells:
            shell = ["sh", "-c", curl_command(cell)]
            argv = lab_sh("exec", cell["from"], *shell) if lab == "compose" else [
                env.tool("meshlab"), "exec", cell["from"], "--", *shell]  # fmt: skip
            measured[(cell["from"], cell["host"])] = measured_code(capture(argv, env)[1])
        lines, failed = matrix_lines(stage, cells, measured)
        print("\n".join(lines), flush=True)
        failures += failed
    print(f"\nverify-mtls: {'PASS' if not failures else f'FAIL ({failures} cell(s))'}")
    return 1 if failures else 0


def verify_authz(args: argparse.Namespace, env: Env) -> int:
    """istio.io's authz-http cascade: the documented /productpage at every step."""
    import urllib.error
    import urllib.request

    lab = find_lab(env)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    failures = 0
    for stage in args.stages or AUTHZ_STAGES:
        code = apply_scenario(lab, env, stage)
        if code:
            return code
        pages = []
        for _ in range(PAGES):
            try:
                with opener.open(f"{gateway_url(lab, env)}/productpage", timeout=20) as reply:
                    pages.append((reply.status, reply.read().decode("utf-8", "replace")))
            except urllib.error.HTTPError as exc:
                pages.append((exc.code, exc.read().decode("utf-8", "replace")))
        print(f"{stage} (scenarios/{stage}.yaml):")
        for check, passed in page_checks(stage, pages):
            failures += not passed
            print(f"  {check}: {'PASS' if passed else 'FAIL'}")
    print(f"\nverify-authz: {'PASS' if not failures else f'FAIL ({failures} check(s))'}")
    return 1 if failures else 0


def verify_rotation(args: argparse.Namespace, env: Env) -> int:
    """Three renewals of httpbin.foo's certificate under steady load through the gateway,
    with no failed request (the lab must run with short-lived certificates)."""
    lab = find_lab(env)
    code = apply_scenario(lab, env, "rotation")
    if code:
        return code
    read = lab_sh("compose", "exec", "-T", "manager", "cat", "/mesh/status/manager.json")

    def status() -> dict[str, Any]:
        if lab == "local":
            return dict(json.loads((env.mesh_dir / "status" / "manager.json").read_text()))
        return dict(json.loads(capture(read, env)[1] or "{}"))

    ttl = float((status().get("ca") or {}).get("ttl_seconds") or 0)
    if not 0 < ttl <= MAX_DEMO_TTL:
        raise LabChoiceError(
            f"certificates live {ttl:g} s here: start the lab with MESH_CERT_TTL=2m "
            "(e.g. MESH_CERT_TTL=2m make up PROFILE=security)"
        )
    seen = [issued_serial(status(), ROTATION_POD)]
    load = Load(f"{gateway_url(lab, env)}/ip").start()
    print(f"load on {gateway_url(lab, env)}/ip; waiting for {ROTATIONS} renewals of "
          f"{ROTATION_POD}'s certificate (lifetime {ttl:g} s, renewed at half-life)", flush=True)  # fmt: skip
    deadline = time.monotonic() + ttl * (ROTATIONS + 1) / 2 + 30
    try:
        while len(seen) <= ROTATIONS and time.monotonic() < deadline:
            time.sleep(1)
            serial = issued_serial(status(), ROTATION_POD)
            if serial != seen[-1]:
                seen.append(serial)
                print(f"  renewed: serial {serial} ({load.ok} requests so far, "
                      f"{len(load.failures)} failed)", flush=True)  # fmt: skip
    finally:
        load.stop()
    rotations = len(seen) - 1
    passed = rotations >= ROTATIONS and not load.failures and load.ok > 0
    print(f"{rotations} renewal(s), {load.ok} requests OK, {len(load.failures)} failed"
          + (f" (first: {load.failures[0]})" if load.failures else ""))  # fmt: skip
    print(f"\nverify-rotation: {'PASS' if passed else 'FAIL'}")
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 -m mesh.lab.security_verify mtls|authz|rotation [STAGE...]`` (make's
    verify-mtls, verify-authz, verify-rotation), on the lab the dispatcher finds."""
    parser = argparse.ArgumentParser(prog="python3 -m mesh.lab.security_verify")
    parser.add_argument("verify", choices=("mtls", "authz", "rotation"))
    parser.add_argument("stages", nargs="*", help="only these stages (mtls, authz)")
    args = parser.parse_args(argv)
    env = Env.from_environ(dict(os.environ))
    run = {"mtls": verify_mtls, "authz": verify_authz, "rotation": verify_rotation}
    try:
        return run[args.verify](args, env)
    except LabChoiceError as exc:
        print(f"meshlab: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
