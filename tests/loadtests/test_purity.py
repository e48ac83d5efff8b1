"""The pure modules import neither Locust nor gevent: pytest of the mesh must never be
monkey-patched (gevent does not mix with the sidecar's asyncio)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = (
    "attribution",
    "window",
    "stats",
    "verdict",
    "strategies",
    "plan",
    "view",
    "exercises",
    "check",
    "liveconfig",
)


def test_pure_modules_do_not_pull_in_locust_or_gevent():
    code = (
        "import sys\n"
        + "".join(f"import loadtests.{name}\n" for name in PURE)
        + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent'))\n"
        + "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
