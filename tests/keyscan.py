"""Where private keys are (the test of "keys never leave the pod that owns them").

``scan(root, allowed)``: every file under ``root`` holding ``PRIVATE KEY`` (PEM), except under
the ``allowed`` directories; ``scan_image(image)``: the same inside a built image's
filesystem (``docker run --rm IMAGE`` + grep), for the image layers.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path

MARKER = b"PRIVATE KEY-----"
# Where an image may hold PEM private keys that are no workload's: test vectors of the Python
# packages installed (cryptography's, pip's vendored libraries...).
IMAGE_SEARCHED = ("/mesh", "/app", "/var/lib/meshlab", "/var/run", "/tmp", "/home")


def scan(root: Path, allowed: Iterable[Path] = ()) -> list[Path]:
    allowed = [a.resolve() for a in allowed]
    found = []
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        if any(path.resolve().is_relative_to(a) for a in allowed):
            continue
        try:
            if MARKER in path.read_bytes():
                found.append(path)
        except OSError:
            continue
    return found


def scan_image(image: str, docker: str = "docker") -> list[str]:
    """Files holding a PEM private key in the image's own directories (the image as built:
    its layers, nothing mounted)."""
    done = subprocess.run(
        [docker, "run", "--rm", "--entrypoint", "sh", image, "-c",
         "grep -rlI -- 'PRIVATE KEY-----' " + " ".join(IMAGE_SEARCHED) + " 2>/dev/null; true"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if line.strip()]
