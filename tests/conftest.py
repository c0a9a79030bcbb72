"""Shared test settings: the process settings of an experiment process (headless MuJoCo rendering, one torch
thread per pytest-xdist worker), from the one place that decides them."""

from lattice.experiments.process import configure_process

configure_process()
