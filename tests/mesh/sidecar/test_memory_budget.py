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
