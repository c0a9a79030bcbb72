"""Reports over real run folders: the table's numbers against the runs' evaluations.npz, figures, intervals."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from lattice.experiments.report import comparison_table, interval, last_evaluations
from tests.test_cli import ROOT, tiny_run_args

PLOT = str(ROOT / "experiments" / "plot.py")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """2 noises × 2 seeds of PPO on the elbow, a few hundred steps each, started side by side."""
    log_dir = tmp_path_factory.mktemp("sweep") / "logs"
    env = dict(os.environ)
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


def test_comparison_against_the_baseline(runs, tmp_path):
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(runs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    finals = pd.read_csv(out / "evaluations.csv").sort_values("timesteps").groupby("run").tail(1)
    lattice, isotropic = (finals[finals["noise"] == noise] for noise in ("lattice", "isotropic"))
    row = pd.read_csv(out / "comparison.csv").set_index("noise").loc["lattice"]
    assert row["baseline"] == "isotropic" and row["seeds"] == "2 vs 2"
    assert row["return"] == pytest.approx(lattice["return"].mean() - isotropic["return"].mean())
    assert row["effort"] == pytest.approx(lattice["effort"].mean() / isotropic["effort"].mean() - 1.0)
    a, b = lattice["return"].to_numpy(), isotropic["return"].to_numpy()
    ci = scipy.stats.bootstrap(
        (a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis), n_resamples=2000, method="percentile", random_state=0
    ).confidence_interval
    assert (row["return_low"], row["return_high"]) == pytest.approx((ci.low, ci.high))
    assert (
        f"| myoElbowPose1D6MRandom-v0 | ppo | lattice | isotropic | 2 vs 2 | {row['return']:+.2f} ["
        in (out / "final.md").read_text()
    )


def test_unfinished_runs_are_listed_not_compared(runs, tmp_path):
    """A run killed before its end (a copy of a real run without its summary) is left out of the figures and
    tables and listed with its last evaluation; --unfinished reports it."""
    logs = tmp_path / "logs"
    shutil.copytree(runs, logs)
    killed = sorted((logs / "ppo").iterdir())[0]
    (killed / "summary.yml").unlink()
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(logs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "final.csv")
    assert sorted(table["seeds"]) == [1, 2]
    assert f"- {killed.name}: last evaluation at 128 steps; not finished" in (out / "final.md").read_text()
    result = subprocess.run(
        [sys.executable, PLOT, str(logs), "--out", str(out), "--unfinished"], capture_output=True, text=True
    )
    assert result.returncode == 0 and (pd.read_csv(out / "final.csv")["seeds"] == 2).all()
    for run in (logs / "ppo").iterdir():
        (run / "summary.yml").unlink(missing_ok=True)
    result = subprocess.run([sys.executable, PLOT, str(logs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 2 and "No finished runs" in result.stderr and "--unfinished" in result.stderr


def test_a_run_stopped_by_an_error_says_why(runs, tmp_path):
    """A learning rate of 1e6 makes the policy's parameters non-finite at the first update: the run exits with
    the distribution's error, writes it to error.txt, and the report lists it beside the finished runs."""
    logs = tmp_path / "logs"
    shutil.copytree(runs, logs)
    args = tiny_run_args("ppo", "lattice", logs)
    result = subprocess.run(
        [sys.executable, *args, "n_steps=32", "batch_size=16", "learning_rate=1e6"],
        cwd=tmp_path,
        env=dict(os.environ),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1 and "Non-finite values" in result.stderr
    (stopped,) = [run for run in (logs / "ppo").iterdir() if (run / "error.txt").is_file()]
    error = (stopped / "error.txt").read_text()
    assert error.startswith("stopped at 32 steps: ValueError: Non-finite values") and "Traceback" in error
    assert not (stopped / "summary.yml").exists()
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(logs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (pd.read_csv(out / "final.csv")["seeds"] == 2).all()
    assert (
        f"- {stopped.name}: no evaluation; stopped at 32 steps: ValueError: Non-finite"
        in (out / "final.md").read_text()
    )


def test_interval_mean_and_iqm():
    values = np.array([0.0, 1.0, 2.0, 3.0, 100.0])
    mean, low, high = interval(values, "mean")
    assert mean == pytest.approx(21.2) and low <= mean <= high
    iqm, low, high = interval(values, "iqm")
    assert iqm == pytest.approx(2.0) and low <= iqm <= high  # the middle 50%: [1, 2, 3]
    assert np.isnan(interval(np.array([4.0]))[1])  # one seed: no interval


def test_intervals_do_not_depend_on_the_order_of_the_evaluations():
    """The bootstrap resamples seeds by position: the same runs must give the same intervals however their
    evaluations arrive (e.g. with other sweeps' runs mixed in)."""
    rng = np.random.default_rng(0)
    rows = [
        {"run": f"{noise}_{seed}", "env": "e", "algo": "ppo", "noise": noise, "timesteps": t, "return": rng.normal()}
        for noise in ("lattice", "isotropic")
        for seed in range(5)
        for t in (100, 200)
    ]
    evaluations = pd.DataFrame(rows)
    expected = comparison_table(last_evaluations(evaluations))
    assert np.isfinite(expected[["return_low", "return_high"]].to_numpy()).all()
    for permutation in range(3):
        shuffled = evaluations.sample(frac=1.0, random_state=permutation)
        pd.testing.assert_frame_equal(comparison_table(last_evaluations(shuffled)), expected)


def test_no_runs_exits_2(tmp_path):
    result = subprocess.run([sys.executable, PLOT, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "No run folders" in result.stderr
