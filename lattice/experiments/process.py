"""The process-wide settings of an experiment process, decided here and applied by its entry points (each CLI
command, and a sweep worker before it runs a trial), never by an import.

- Rendering without a display: MuJoCo chooses its OpenGL backend when it is imported, from ``MUJOCO_GL``; without
  one set it fails with an obscure ``OffScreenViewer`` error on a machine without a display. Software EGL works
  there, so it is chosen when there is no display and the user chose nothing.
- One torch thread: SB3's small networks train fastest single-threaded, and parallel runs (sweep trials, env
  worker processes) then do not fight over the cores.
- The cores a run may use (``available_cores``): those the process may run on (its CPU affinity), and no more than
  a sweep trial was given (its ``resources.cpus``). A run's ``vec_env: auto`` steps its envs in-process on one core.

Signals are handled here too, and only where a command asks for it: SIGTERM stops a training run as Ctrl-C does,
and neither is lost (``stop_signals_as_interrupt``); env worker processes leave both to the training process.
A sweep worker, which trains in a thread where no signal arrives, is stopped the same way by a request
(``request_stop``: the sweep was stopped) or a deadline (``stop_at``: its SLURM job's walltime is near).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import torch as th

# The cores given to this process's work (``configure_process``'s ``cores``); None: every core it may run on.
_cores: int | None = None


def configure_process(threads: int = 1, cores: int | None = None) -> None:
    """Apply the settings above (call before anything imports MuJoCo or MyoSuite).

    :param threads: torch's intra-op threads.
    :param cores: The cores this process's work was given (a sweep trial's ``resources.cpus``); None: every core it
        may run on.
    """
    global _cores
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
    th.set_num_threads(threads)
    _cores = cores


def available_cores() -> int:
    """The cores this process's work may use: those it may run on (its CPU affinity: ``taskset``, a SLURM job's
    cgroup), no more than ``configure_process`` was given."""
    if hasattr(os, "sched_getaffinity"):
        allowed = len(os.sched_getaffinity(0))
    else:  # macOS: no affinity
        allowed = os.cpu_count() or 1
    return allowed if _cores is None else min(allowed, _cores)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C raises KeyboardInterrupt (see ``stop_signals_as_interrupt``)."""


class StopRequested(KeyboardInterrupt):
    """A stop asked of a sweep worker's trial by its driver (``request_stop``): the sweep was stopped."""


class Handover(KeyboardInterrupt):
    """The trial's time in its worker is up (``stop_at``): it checkpoints and goes on in another worker."""


# The stop signal received within ``stop_signals_as_interrupt`` (see there); None before one arrives.
_received: KeyboardInterrupt | None = None
# A stop requested of this process (``request_stop``), and the time at which training stops (``stop_at``).
_requested: KeyboardInterrupt | None = None
_deadline: float | None = None


def pending_stop() -> KeyboardInterrupt | None:
    """The stop to raise now, as a new exception, or None: a Ctrl-C or SIGTERM received within
    ``stop_signals_as_interrupt``, a stop requested by ``request_stop``, or the deadline of ``stop_at`` passed."""
    for stop in (_received, _requested):
        if stop is not None:
            return type(stop)(*stop.args)
    if _deadline is not None and time.time() >= _deadline:
        return Handover(f"handed over at {time.strftime('%H:%M:%S', time.localtime(_deadline))}, before the walltime")
    return None


def request_stop(why: str) -> None:
    """Stop the training that runs in this process at its next step, as Ctrl-C would (``StopRequested``); called in
    a sweep worker by the driver (Dask's ``client.run``), or by a signal handler there."""
    global _requested
    _requested = StopRequested(why)


@contextlib.contextmanager
def stop_at(deadline: float | None) -> Iterator[None]:
    """Within the block, training stops (``Handover``) at its first step after ``deadline`` (seconds since the
    epoch; None: no deadline)."""
    global _deadline
    previous, _deadline = _deadline, deadline
    try:
        yield
    finally:
        _deadline = previous


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
