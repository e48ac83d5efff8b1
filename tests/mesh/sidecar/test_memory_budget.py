"""The memory budget: OpenSSL stays out of a proxy, and uvloop still works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_no_openssl_mode_keeps_openssl_out_and_uvloop_working():
    code = (
        "from mesh.sidecar import memory_budget; assert memory_budget.stub_out_openssl()\n"
        "import asyncio, hashlib, uvloop, ssl\n"
        "assert hashlib.sha256(b'x').hexdigest().startswith('2d711642')\n"
        "uvloop.run(asyncio.sleep(0))\n"
        "maps = open('/proc/self/maps').read()\n"
        "assert 'libcrypto' not in maps and 'libssl' not in maps, 'OpenSSL loaded'\n"
        "try:\n    ssl.create_default_context()\nexcept RuntimeError:\n    print('stub')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[3], check=True)  # fmt: skip
    assert out.stdout.strip() == "stub"


def test_needs_tls_when_a_secrets_dir_is_given():
    from mesh.sidecar.memory_budget import needs_tls

    assert not needs_tls(["--pod", "p"], {})
    assert needs_tls(["--secrets-dir", "/s"], {})
    assert needs_tls(["--secrets-dir=/s"], {})
    assert not needs_tls(["--secrets-dir="], {})
    assert needs_tls([], {"MESH_SECRETS_DIR": "/var/run/meshlab/secrets"})
    assert not needs_tls([], {"MESH_SECRETS_DIR": ""})


def test_a_proxy_runs_with_docstrings_compiled_out_and_keeps_its_help():
    """``proxy_argv`` starts ``python -OO -m mesh.sidecar``: its modules load without their
    docstrings, and ``--help`` still says what the program is (not from a docstring)."""
    from mesh.sidecar.memory_budget import PROXY_PYTHON_FLAGS, proxy_argv

    repo = Path(__file__).resolve().parents[3]
    argv = proxy_argv(sys.executable)
    assert argv == (sys.executable, "-OO", "-m", "mesh.sidecar")
    out = subprocess.run([*argv, "--help"], capture_output=True, text=True, check=True, cwd=repo)
    assert "sidecar proxy" in out.stdout and "--pod" in out.stdout
    probe = "import sys, mesh.sidecar.server as s; print(sys.flags.optimize, s.__doc__)"
    out = subprocess.run([sys.executable, *PROXY_PYTHON_FLAGS, "-c", probe], capture_output=True,
                         text=True, check=True, cwd=repo)  # fmt: skip
    assert out.stdout.split() == ["2", "None"]
