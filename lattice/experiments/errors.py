"""The experiment layer's errors, one type per kind of bad input, and how a command reports them.

Every error here is a mistake of the user's that is found before anything is written: the commands print it as one
line (``error: ...`` on stderr) and exit with ``USAGE_EXIT`` (2). What stops a run, a sweep or a tuning after it
started has its own type and exit code where it is raised (``training.RunStopped``: 130 / 143,
``cluster.NoWorkers``: 3).

=====================  ======================================================================================
type                   raised for
=====================  ======================================================================================
``ConfigError``        a run setting, a config / sweep / tuning file, or a ``--hyperparams`` item that is wrong
``RunFolderError``     a run folder that cannot be used: missing, not a run folder, finished, no such model
``OutputPathError``    an output path that cannot be written (a video file, a report folder)
``NotRenderable``      an env that cannot be rendered on this machine (``--video``, ``lattice-render``)
=====================  ======================================================================================

All are ``UsageError`` (a ``ValueError``), so ``except UsageError`` is the one place a command maps them to its exit
code.
"""

from __future__ import annotations

import sys

USAGE_EXIT = 2  # the exit code of bad input, as argparse uses it


class UsageError(ValueError):
    """Bad input, found before anything is written; its message is one line naming the value and what is valid."""


class ConfigError(UsageError):
    """A bad run setting, config file, sweep file, tuning file or ``--hyperparams`` item."""


class RunFolderError(UsageError):
    """A run folder that cannot be used for what was asked (missing, not a run folder, finished, no such model)."""


class OutputPathError(UsageError):
    """An output path that cannot be written (a video file name, a folder that is a file or is read-only)."""


class NotRenderable(UsageError):
    """An env that cannot be rendered on this machine (a missing renderer or display library)."""


def fail(error: UsageError | str) -> int:
    """Print ``error`` as the command's one line on stderr and return the exit code of bad input.

    :param error: The error, or its message.
    """
    print(f"error: {error}", file=sys.stderr, flush=True)
    return USAGE_EXIT
