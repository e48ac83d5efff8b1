"""What keeps a proxy inside its memory budget (30 MB; 40 MB with TLS): no OpenSSL unless
the proxy has a workload identity, malloc tuned for a small long-running process, the
collector settled after each config, freed heap handed back.

Primitives: ``proxy_argv(python)``, ``needs_tls(argv, environ)``, ``stub_out_openssl()``,
``tune_malloc()``, ``settle()``, ``trim()``.

A proxy runs as ``python -OO -m mesh.sidecar`` (``proxy_argv``, what every launcher uses):
docstrings compiled out, its own and the standard library's, are about 0.7 MB of RSS less
(measured: 28.7 vs 29.4 MB loaded). ``-OO`` drops asserts too; the proxy's only narrow types
for mypy. It pays only where the ``.opt-2.pyc`` files exist (compiling the standard library
from source at each start costs 0.4 s and a few MB more): a venv writes them on first use,
the lab's image compiles them at build time (compose/Dockerfile).

A proxy without a secrets directory speaks plain HTTP only, yet ``asyncio``/uvloop import
``ssl`` and ``hashlib`` loads ``_hashlib``: both map ``libcrypto`` (about 4 MB of RSS per
proxy, an eighth of the 30 MB budget). ``stub_out_openssl()`` runs before those imports,
only when ``needs_tls`` says no (a proxy with a secrets directory speaks mTLS,
``mesh.sidecar.tls``): ``hashlib`` falls back to CPython's built-in SHA-2 (the snapshot's
content hash needs nothing else), and ``ssl`` is a stub carrying the few names uvloop reads at
import time; actually using TLS raises. When ``ssl`` or ``hashlib`` is already loaded (a test
process, say), nothing is done.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping, Sequence

# The interpreter's flags for a proxy (the module's docstring says why).
PROXY_PYTHON_FLAGS = ("-OO",)


def proxy_argv(python: str) -> tuple[str, ...]:
    """The start of a proxy's command line, before its options: ``python -OO -m mesh.sidecar``."""
    return (python, *PROXY_PYTHON_FLAGS, "-m", "mesh.sidecar")


class SSLError(OSError):
    """TLS is not available in the mesh sidecar."""


class SSLZeroReturnError(SSLError):
    pass


class SSLWantReadError(SSLError):
    pass


class SSLWantWriteError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class SSLEOFError(SSLError):
    pass


class CertificateError(ValueError):
    pass


def _unavailable(*args: object, **kwargs: object) -> None:
    raise RuntimeError("TLS is not available in the mesh sidecar")


class _Unavailable:
    def __init__(self, *args: object, **kwargs: object) -> None:
        _unavailable()


_CONSTANTS = (
    "SSL_ERROR_SSL",
    "SSL_ERROR_WANT_READ",
    "SSL_ERROR_WANT_WRITE",
    "SSL_ERROR_WANT_X509_LOOKUP",
    "SSL_ERROR_SYSCALL",
    "SSL_ERROR_ZERO_RETURN",
    "SSL_ERROR_WANT_CONNECT",
    "SSL_ERROR_EOF",
)


def needs_tls(argv: Sequence[str], environ: Mapping[str, str]) -> bool:
    """Whether this proxy will speak TLS: it was given a secrets directory (``--secrets-dir``
    or ``MESH_SECRETS_DIR``). Then OpenSSL must stay: the stub would make ``ssl`` unusable."""
    for i, arg in enumerate(argv):
        if arg.startswith("--secrets-dir="):
            return bool(arg.partition("=")[2])
        if arg == "--secrets-dir":
            return i + 1 < len(argv) and bool(argv[i + 1])
    return bool(environ.get("MESH_SECRETS_DIR"))


def stub_out_openssl() -> bool:
    """Block OpenSSL for this process; True when done (False: already loaded)."""
    if "ssl" in sys.modules or "hashlib" in sys.modules or "_hashlib" in sys.modules:
        return False
    sys.modules["_hashlib"] = None  # type: ignore[assignment]  # hashlib: built-in fallbacks
    sys.modules["_ssl"] = None  # type: ignore[assignment]
    stub = types.ModuleType("ssl", "Stub: no TLS in the mesh sidecar (mesh.sidecar.memory_budget).")
    for cls in (SSLError, SSLZeroReturnError, SSLWantReadError, SSLWantWriteError,
                SSLSyscallError, SSLEOFError, CertificateError):  # fmt: skip
        setattr(stub, cls.__name__, cls)
    for name in ("SSLContext", "SSLObject", "SSLSocket", "MemoryBIO"):
        setattr(stub, name, _Unavailable)
    stub.create_default_context = _unavailable  # type: ignore[attr-defined]
    for value, name in enumerate(_CONSTANTS, start=1):
        setattr(stub, name, value)
    stub.CERT_NONE = 0  # type: ignore[attr-defined]
    stub.HAS_SNI = False  # type: ignore[attr-defined]
    sys.modules["ssl"] = stub
    return True


def tune_malloc() -> None:
    """glibc knobs for a small, long-running proxy: one malloc arena (the writer thread would
    otherwise get its own, and keep its pages), and a fixed mmap threshold so that big
    transient buffers (a burst of access-log text) are mapped and unmapped, not left as
    fragmented heap."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(-8, 1)  # M_ARENA_MAX
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD (also stops its dynamic growth)
    except (OSError, AttributeError):
        pass


def settle() -> None:
    """After a config apply: a full collection, then ``gc.freeze()`` (the long-lived objects
    are never traversed again by request-path collections), then ``malloc_trim``."""
    import gc

    gc.unfreeze()  # an old table left in the frozen set must be collectable now
    gc.collect()
    gc.freeze()
    trim()


def trim() -> None:
    """Give freed heap pages back to the OS."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass
