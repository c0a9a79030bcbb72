"""One writer per folder: a process that writes into a run folder (a run, its resume), a sweep's or a tuning's
folder holds the folder's writer lock for as long as it runs, and a second one is refused (``FolderInUse``) with a
line naming the holder."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; folders are not guarded there
    fcntl = None  # type: ignore[assignment]

from lattice.experiments.errors import UsageError
from lattice.experiments.rundir import LOCK, command_line


class FolderInUse(UsageError):
    """Another process is writing into the folder (the CLI exits with code 2)."""


def holder() -> str:
    """Who holds a writer lock, as its file records it: process id, host, start time and command line."""
    started = datetime.datetime.now().isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()} since {started} ({command_line()})"


@contextlib.contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the ``with`` block, or raise ``FolderInUse`` naming the process that holds it.

    The lock is the operating system's advisory lock (``flock``) on ``folder/writer.lock``: the kernel releases it
    when its process ends in any way (SIGKILL and power loss included), so a killed run never blocks its resume;
    the file's text only names the holder for the message. On a cluster file system it guards as far as that
    file system supports ``flock`` (NFSv4 and Lustre with ``-o flock`` do).
    """
    if fcntl is None:
        yield
        return
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = b""
            for _ in range(20):  # the holder writes its name right after taking the lock
                text = os.pread(fd, 4096, 0)
                if text:
                    break
                time.sleep(0.05)
            name = text.decode(errors="replace").strip() or "another process"
            raise FolderInUse(
                f"{folder} is in use by {name}; one process writes a folder at a time: wait for it to end, or stop "
                "it (a stopped or killed process frees the folder)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (holder() + "\n").encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
