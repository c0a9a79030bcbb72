"""The process-wide settings of an experiment process, decided here and applied by its entry points (each CLI
command, and a sweep worker before it runs a trial), never by an import.

- Rendering without a display: MuJoCo chooses its OpenGL backend when it is imported, from ``MUJOCO_GL``; without
  one set it fails with an obscure ``OffScreenViewer`` error on a machine without a display. Software EGL works
  there, so it is chosen when there is no display and the user chose nothing.
- One torch thread: SB3's small networks train fastest single-threaded, and parallel runs (sweep trials, env
  worker processes) then do not fight over the cores.
"""

from __future__ import annotations

import os

import torch as th


def configure_process(threads: int = 1) -> None:
    """Apply the settings above (call before anything imports MuJoCo or MyoSuite).

    :param threads: torch's intra-op threads.
    """
    if "MUJOCO_GL" not in os.environ and not os.environ.get("DISPLAY"):
        os.environ["MUJOCO_GL"] = "egl"
    th.set_num_threads(threads)
