"""Directory watching with the inotify syscalls, on the event loop (no thread).

Why not ``watchfiles.awatch``: it runs a Rust notifier thread and imports anyio,
multiprocessing and friends, which costs the proxy about 1.5 MB of its 30 MB budget; the
sidecar needs exactly one thing, "something in this directory changed", which inotify gives
on a non-blocking fd that the loop watches with ``add_reader``. Linux only; ``watch_dir``
returns None elsewhere (or when inotify is exhausted) and the caller's poll carries on alone.
Events are coalesced: a burst (temp file written, renamed over) triggers one callback.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from collections.abc import Callable
from pathlib import Path

IN_ATTRIB = 0x004
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
MASK = (
    IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF
)  # fmt: skip


class DirWatch:
    """An inotify watch on one directory, calling ``on_change`` (coalesced) on events."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, on_change: Callable[[], None]):
        self.loop = loop
        self.fd = fd
        self.on_change = on_change
        self.scheduled = False
        loop.add_reader(fd, self._readable)

    def _readable(self) -> None:
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass
        except OSError:
            self.close()
            return
        if not self.scheduled:
            # Let the rest of a burst arrive, then look once.
            self.scheduled = True
            self.loop.call_later(0.005, self._fire)

    def _fire(self) -> None:
        self.scheduled = False
        self.on_change()

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1


def watch_dir(
    loop: asyncio.AbstractEventLoop, path: Path, on_change: Callable[[], None]
) -> DirWatch | None:
    try:
        # dlopen(NULL): the process's own symbols, libc included (``ctypes.util`` would pull
        # shutil, bz2 and lzma in just to find the library's name).
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            return None
        if libc.inotify_add_watch(fd, os.fsencode(path), MASK) < 0:
            os.close(fd)
            return None
    except (OSError, AttributeError):
        return None
    return DirWatch(loop, fd, on_change)
