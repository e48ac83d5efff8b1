"""Instructions per proxied request on the sidecar's fast path, counted by callgrind.

Deterministic where wall-clock timing is not (the machine is shared): ``sidecar_hotpath.py``
runs under ``valgrind --tool=callgrind`` twice, with ``-n LOW`` and ``-n HIGH`` requests,
and the difference of the two totals divided by ``HIGH - LOW`` is what one request costs
(start-up, imports and warm-up cancel out). ``PYTHONHASHSEED`` is fixed so both runs hash
alike.

    python bench/hotpath_instructions.py [--telemetry on|metrics|off|all] [--low 500] [--high 2500]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOTAL = re.compile(r"I\s+refs:\s+([\d,]+)")


def total_instructions(n: int, telemetry: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/cg.out",
                sys.executable,
                str(HERE / "sidecar_hotpath.py"),
                "-n",
                str(n),
                "--telemetry",
                telemetry,
            ],  # fmt: skip
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},
        )
    found = TOTAL.search(out.stderr)
    if found is None:
        raise SystemExit(f"no total in callgrind's output:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def per_request(low: int, high: int, telemetry: str) -> float:
    return (total_instructions(high, telemetry) - total_instructions(low, telemetry)) / (high - low)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--telemetry", choices=("on", "metrics", "off", "all"), default="all")
    ap.add_argument("--low", type=int, default=500)
    ap.add_argument("--high", type=int, default=2500)
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    modes = ("off", "metrics", "on") if args.telemetry == "all" else (args.telemetry,)
    for mode in modes:
        ir = per_request(args.low, args.high, mode)
        print(f"telemetry {mode}: {ir:,.0f} instructions per proxied request", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
