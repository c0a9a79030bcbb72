"""Reports over real run folders: the table's numbers against the runs' evaluations.npz, figures, intervals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from lattice.report import interval
from tests.test_cli import ROOT, tiny_run_args

PLOT = str(ROOT / "experiments" / "plot.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """2 noises × 2 seeds of PPO on the elbow, a few hundred steps each, started side by side."""
    log_dir = tmp_path_factory.mktemp("sweep") / "logs"
    env = {**os.environ, "MUJOCO_GL": "egl"}
    procs = [
        subprocess.Popen(
            [sys.executable, *tiny_run_args("ppo", noise, log_dir), "--seed", str(seed)],
            cwd=log_dir.parent,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for noise in ("lattice", "isotropic")
        for seed in (0, 1)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    return log_dir


def test_report_table_matches_the_runs(runs, tmp_path):
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(runs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "myoElbowPose1D6MRandom-v0.png").stat().st_size > 10_000
    table = pd.read_csv(out / "final.csv")
    assert sorted(table["noise"]) == ["isotropic", "lattice"] and (table["seeds"] == 2).all()
    for noise in ("isotropic", "lattice"):
        finals = {"return": [], "effort": [], "success": []}
        for run_dir in (runs / "ppo").iterdir():
            config = (run_dir / "config.yml").read_text()
            if f"noise: {noise}\n" not in config:
                continue
            data = np.load(run_dir / "evaluations.npz")
            finals["return"].append(data["results"][-1].mean())
            finals["effort"].append(data["ep_effort"][-1].mean())
            finals["success"].append(data["successes"][-1].mean())
        row = table[table["noise"] == noise].iloc[0]
        assert len(finals["return"]) == 2
        for column, values in finals.items():
            assert row[column] == pytest.approx(np.mean(values)), column
            if values[0] != values[1]:
                ci = scipy.stats.bootstrap(
                    (np.array(values),), np.mean, n_resamples=2000, method="percentile", random_state=0
                ).confidence_interval
                assert (row[f"{column}_low"], row[f"{column}_high"]) == pytest.approx((ci.low, ci.high))
        assert (
            f"| myoElbowPose1D6MRandom-v0 | ppo | {noise} | 2 | 128 | {row['return']:.2f} ["
            in (out / "final.md").read_text()
        )
    assert "final.md" in result.stdout


def test_interval_mean_and_iqm():
    values = np.array([0.0, 1.0, 2.0, 3.0, 100.0])
    mean, low, high = interval(values, "mean")
    assert mean == pytest.approx(21.2) and low <= mean <= high
    iqm, low, high = interval(values, "iqm")
    assert iqm == pytest.approx(2.0) and low <= iqm <= high  # the middle 50%: [1, 2, 3]
    assert np.isnan(interval(np.array([4.0]))[1])  # one seed: no interval


def test_no_runs_exits_2(tmp_path):
    result = subprocess.run([sys.executable, PLOT, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "No run folders" in result.stderr
