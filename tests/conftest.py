"""Shared test settings: the process settings of an experiment process (headless MuJoCo rendering, one torch
thread per pytest-xdist worker), from the one place that decides them."""

import os
from pathlib import Path

import pytest

from lattice.experiments.process import configure_process

configure_process()


def session_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder shared by every pytest-xdist worker of this test session (and only of this session), for work that
    is done once and guarded by a lock file: the session's base folder holds one folder per worker."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name
    folder.mkdir(exist_ok=True)
    return folder
