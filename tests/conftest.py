"""Shared test settings."""

import os

# Headless rendering for MuJoCo, before anything imports it.
os.environ.setdefault("MUJOCO_GL", "egl")

import torch as th

# Tests run in parallel (pytest-xdist, one worker per core): one torch thread per worker avoids oversubscription.
th.set_num_threads(1)
