"""The process-wide settings of an experiment process, decided here and applied by its entry points (each CLI
command, and a sweep worker before it runs a trial), never by an import.

- Rendering without a display: MuJoCo chooses its OpenGL backend when it is imported, from ``MUJOCO_GL``; without
  one set it fails with an obscure ``OffScreenViewer`` error on a machine without a display. Software EGL works
  there, so it is chosen when there is no display and the user chose nothing.
- One torch thread: SB3's small networks train fastest single-threaded, and parallel runs (sweep trials, env
  worker processes) then do not fight over the cores.

Signals are handled here too, and only where a command asks for it: SIGTERM stops a training run as Ctrl-C does,
and neither is lost (``stop_signals_as_interrupt``); env worker processes leave both to the training process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import torch as th


def configure_process(threads: int = 1) -> None:
    """Apply the settings above (call before anything imports MuJoCo or MyoSuite).

    :param threads: torch's intra-op threads.
    """
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
    th.set_num_threads(threads)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt (see ``stop_signals_as_interrupt``)."""


# The stop signal received within ``stop_signals_as_interrupt`` (see there); None before one arrives.
_received: KeyboardInterrupt | None = None


def pending_stop() -> KeyboardInterrupt | None:
    """The stop (Ctrl-C or SIGTERM) received within ``stop_signals_as_interrupt``, as a new exception to raise, or
    None."""
    return None if _received is None else type(_received)(*_received.args)


@contextlib.contextmanager
def stop_signals_as_interrupt() -> Iterator[None]:
    """Within the block, Ctrl-C (SIGINT) raises KeyboardInterrupt and SIGTERM (what SLURM and most schedulers send
    before they kill a job) raises ``Terminated``, a KeyboardInterrupt, so that a run stops as on Ctrl-C: a
    checkpoint, ``error.txt`` and a line on how to resume.

    Each is also remembered (``pending_stop``). Python runs a signal's handler between two bytecodes of whatever
    runs, a finalizer too (a ``__del__`` during garbage collection), and it discards an exception raised in a
    finalizer ("Exception ignored in ..."): a signal that arrived then would be lost and the run go on. Training
    checks ``pending_stop`` at every step (``lattice.experiments.callbacks.StopSignalCallback``) and raises it.

    A second SIGTERM ends the process at once, as without the handler; a second Ctrl-C raises again.
    """
    global _received
    if threading.current_thread() is not threading.main_thread():  # Python delivers signals to the main thread
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        global _received
        received = KeyboardInterrupt()
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            received = Terminated(f"terminated by {signal.Signals(signum).name}")
        _received = received
        raise received

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _received = None


def leave_stop_signals_to_parent() -> None:
    """In an env worker process: ignore SIGINT and SIGTERM. Ctrl-C and a scheduler's SIGTERM reach the whole process
    group; the training process handles them and closes its env workers itself (and a worker ends when its pipe
    to a killed training process closes)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
