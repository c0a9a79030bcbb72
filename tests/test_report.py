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
from filelock import FileLock
from stable_baselines3.common.monitor import Monitor

from lattice.experiments.config import load_yaml
from lattice.experiments.stats import comparison_table, interval, last_evaluations
from tests.conftest import session_folder
from tests.helpers import RENDER, ROOT, pen_env, spin_the_pen, tiny_run_args

PLOT = str(ROOT / "experiments" / "plot.py")


def bootstrap_interval(values) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the mean of one value per seed, computed here with scipy; seeds that
    tie (a success rate of 0 in every seed) have no spread: the interval is the value itself."""
    values = np.asarray(values, dtype=np.float64)
    if np.all(values == values[0]):
        return float(values[0]), float(values[0])
    ci = scipy.stats.bootstrap(
        (values,), np.mean, n_resamples=2000, method="percentile", random_state=0
    ).confidence_interval
    return float(ci.low), float(ci.high)


@pytest.fixture(scope="session")
def runs(tmp_path_factory) -> Path:
    """2 noises × 2 seeds of PPO on the elbow, a few hundred steps each, started side by side; made once and shared
    by the pytest-xdist workers (the tests only read them, or copy them to change them)."""
    shared = session_folder(tmp_path_factory, "report_runs")
    log_dir = shared / "logs"
    with FileLock(str(shared / "runs.lock")):
        if not (shared / "made").is_file():
            shutil.rmtree(log_dir, ignore_errors=True)  # what a failed attempt of another worker left
            procs = [
                subprocess.Popen(
                    [sys.executable, *tiny_run_args("ppo", noise, log_dir), "--seed", str(seed)],
                    cwd=shared,
                    env=dict(os.environ),
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
            (shared / "made").touch()
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
        # The seeds' returns differ (the runs are seeded: always), so the bootstrap below is always checked.
        assert finals["return"][0] != finals["return"][1]
        for column, values in finals.items():
            assert row[column] == pytest.approx(np.mean(values)), column
            assert (row[f"{column}_low"], row[f"{column}_high"]) == pytest.approx(bootstrap_interval(values)), column
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


@pytest.mark.fast
def test_interval_mean_and_iqm():
    values = np.array([0.0, 1.0, 2.0, 3.0, 100.0])
    mean, low, high = interval(values, "mean")
    assert mean == pytest.approx(21.2) and low <= mean <= high
    iqm, low, high = interval(values, "iqm")
    assert iqm == pytest.approx(2.0) and low <= iqm <= high  # the middle 50%: [1, 2, 3]
    assert np.isnan(interval(np.array([4.0]))[1])  # one seed: no interval


@pytest.mark.fast
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


@pytest.mark.fast
def test_no_runs_exits_2(tmp_path):
    result = subprocess.run([sys.executable, PLOT, str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2 and "No run folders" in result.stderr


def plot(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, PLOT, *args], capture_output=True, text=True, timeout=300)


def test_a_baseline_no_run_has_exits_2_naming_the_noises_present(runs, tmp_path):
    for baseline in ("gsde", "isotrpic"):
        result = plot(str(runs), "--out", str(tmp_path / "report"), "--baseline", baseline)
        assert result.returncode == 2
        assert result.stderr.strip().splitlines() == [
            f"error: --baseline {baseline}: no reported run has noise {baseline!r}; noises present: isotropic, lattice"
        ]
        assert not (tmp_path / "report").exists()
    lattice_only = tmp_path / "lattice_only"
    for run in (runs / "ppo").iterdir():
        if load_yaml(run / "config.yml")["noise"] == "lattice":
            shutil.copytree(run, lattice_only / run.name)
    result = plot(str(lattice_only), "--out", str(tmp_path / "report"))  # the default baseline may be absent
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Against" not in (tmp_path / "report" / "final.md").read_text()


def test_unreadable_run_folders_are_skipped_and_listed(runs, tmp_path):
    """A copy of a run with an emptied config.yml, another with its evaluations.npz cut short: the report of the
    others is written, and final.md lists both with why."""
    logs = tmp_path / "logs"
    shutil.copytree(runs, logs)
    first, second, *_ = sorted((logs / "ppo").iterdir())
    emptied, cut = logs / "emptied", logs / "cut"
    shutil.copytree(first, emptied)
    (emptied / "config.yml").write_text("")
    shutil.copytree(second, cut)
    (cut / "evaluations.npz").write_bytes((cut / "evaluations.npz").read_bytes()[:50])
    out = tmp_path / "report"
    result = plot(str(logs), "--out", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    assert (pd.read_csv(out / "final.csv")["seeds"] == 2).all()
    text = (out / "final.md").read_text()
    assert f"- {emptied}: ConfigError: {emptied / 'config.yml'} has no env, algo, noise, seed" in text
    assert f"- {cut}: BadZipFile" in text
    only_bad = tmp_path / "only_bad"
    shutil.copytree(emptied, only_bad / "emptied")
    result = plot(str(only_bad), "--out", str(out))
    assert result.returncode == 2 and "No readable run folder under" in result.stderr.strip().splitlines()[-1]


def test_unfinished_over_runs_never_evaluated_exits_2(runs, tmp_path):
    """A run killed before its first evaluation (a copy of a real run without evaluations and summary)."""
    never = tmp_path / "never"
    shutil.copytree(sorted((runs / "ppo").iterdir())[0], never / "run")
    (never / "run" / "evaluations.npz").unlink()
    (never / "run" / "summary.yml").unlink()
    result = plot(str(never), "--out", str(tmp_path / "report"), "--unfinished")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: No evaluated runs under {never} (1 left out)"]
    result = plot(str(tmp_path / "nowhere"))
    assert result.returncode == 2 and result.stderr.strip() == f"error: no such folder: {tmp_path / 'nowhere'}"


RENDER_BAD = [
    (["--size", "0", "0"], "error: --size must be positive, got 0 0"),
    (["--out", "{tmp}/video"], "error: --out {tmp}/video: a video file name ends in .mp4 or .gif"),
    (
        ["--out", "{tmp}/file.txt/video.mp4"],
        "error: --out {tmp}/file.txt/video.mp4: {tmp}/file.txt is a file, not a folder",
    ),
    (["--model", "77"], "available: best, final, 64, 128"),
]


@pytest.mark.parametrize(("args", "message"), RENDER_BAD, ids=[m[7:30] for _, m in RENDER_BAD])
def test_render_bad_arguments_exit_2_with_one_line(runs, tmp_path, args, message):
    (tmp_path / "file.txt").write_text("a file")
    run = sorted((runs / "ppo").iterdir())[0]
    result = subprocess.run(
        [sys.executable, RENDER, str(run), *(a.format(tmp=tmp_path) for a in args)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    (line,) = result.stderr.strip().splitlines()
    assert message.format(tmp=tmp_path) in line
    assert not (run / "videos").exists()


def test_render_a_run_without_a_model_exits_2(runs, tmp_path):
    """A copy of a run with its models removed, as a run killed before its first evaluation leaves it."""
    run = tmp_path / "run"
    shutil.copytree(sorted((runs / "ppo").iterdir())[0], run, ignore=shutil.ignore_patterns("*.zip"))
    result = subprocess.run([sys.executable, RENDER, str(run)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: No best model in {run} (best_model.zip missing); it has no saved model yet"


def test_runs_of_one_noise_that_differ_in_a_setting_are_grouped_by_it(runs, tmp_path):
    """A Lattice run with T = 1 beside the fixture's runs with T = 4 (as a sweep's joint axis makes them): the
    report names the groups 'lattice T=1' and 'lattice T=4', compares both with isotropic noise, and takes such a
    label as --baseline."""
    logs = tmp_path / "logs"
    shutil.copytree(runs, logs)
    args = [sys.executable, *tiny_run_args("ppo", "lattice", logs), "--noise-period", "1"]
    result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(logs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "final.csv").set_index("noise")
    assert table["seeds"].to_dict() == {"isotropic": 2, "lattice T=1": 1, "lattice T=4": 2}
    comparison = pd.read_csv(out / "comparison.csv")
    assert sorted(comparison["noise"]) == ["lattice T=1", "lattice T=4"]
    assert set(comparison["baseline"]) == {"isotropic"}
    assert "| myoElbowPose1D6MRandom-v0 | ppo | lattice T=1 | 1 | 128 |" in (out / "final.md").read_text()
    args = [sys.executable, PLOT, str(logs), "--out", str(out), "--baseline", "lattice T=4"]
    result = subprocess.run(args, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    comparison = pd.read_csv(out / "comparison.csv")
    assert sorted(comparison["noise"]) == ["isotropic", "lattice T=1"]
    assert set(comparison["baseline"]) == {"lattice T=4"}


def test_update_sizes_are_each_runs_median_over_its_updates(runs, tmp_path):
    """approx-KL and clip fraction in the final table: per run the median over its PPO updates (progress.csv), then
    the mean over seeds."""
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(runs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "final.csv").set_index("noise")
    for noise in ("isotropic", "lattice"):
        medians: dict[str, list[float]] = {"approx_kl": [], "clip_fraction": []}
        for run_dir in (runs / "ppo").iterdir():
            if f"noise: {noise}\n" in (run_dir / "config.yml").read_text():
                progress = pd.read_csv(run_dir / "progress.csv")
                for column in medians:
                    medians[column].append(progress[f"train/{column}"].dropna().median())
        for column, values in medians.items():
            assert len(values) == 2 and np.isfinite(values).all()
            assert table.loc[noise, column] == pytest.approx(np.mean(values)), (noise, column)
    assert "approx_kl (mean, 95% CI)" in (out / "final.md").read_text()


def test_energy_at_matched_success_pools_every_evaluation_by_its_success_rate(runs, tmp_path):
    """energy_by_success.csv: per noise and success bin, the mean effort of every evaluation (of every run) whose
    success rate is in the bin; with 2 episodes per evaluation a success rate is 0, 0.5 or 1."""
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(runs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    bins = {0.0: "0", 0.5: "0.35-0.65", 1.0: "0.95-1"}
    expected: dict[tuple[str, str], list[float]] = {}
    for run_dir in (runs / "ppo").iterdir():
        noise = load_yaml(run_dir / "config.yml")["noise"]
        data = np.load(run_dir / "evaluations.npz")
        for success, effort in zip(data["successes"].mean(axis=1), data["ep_effort"].mean(axis=1), strict=True):
            expected.setdefault((noise, bins[float(success)]), []).append(effort)
    table = pd.read_csv(out / "energy_by_success.csv")
    assert set(table["energy"]) == {"effort"}
    got = {(row.noise, row.success_bin): (row.mean, row.evaluations) for row in table.itertuples()}
    assert got == {key: (pytest.approx(np.mean(values)), len(values)) for key, values in expected.items()}
    assert "by success rate" in (out / "final.md").read_text()
    assert (out / "myoElbowPose1D6MRandom-v0_energy_vs_performance.png").stat().st_size > 10_000


def test_diverged_is_each_runs_fraction_of_training_episodes_the_guard_ended(runs, tmp_path):
    """The ``diverged`` column: per run, the fraction of its training episodes (every monitor CSV) that
    SimulationGuard ended. The two Lattice runs' monitor files are replaced by real ones from the guarded pen env,
    through SB3's Monitor: 2 episodes in one run, 3 in the other, one of which diverges (its pen spun off)."""
    logs = tmp_path / "logs"
    shutil.copytree(runs, logs)
    lattice_runs = sorted(d for d in (logs / "ppo").iterdir() if "noise: lattice\n" in (d / "config.yml").read_text())
    assert len(lattice_runs) == 2
    flags = []
    for run_dir, spins in zip(lattice_runs, ([False, False], [False, True, False]), strict=True):
        for old in run_dir.glob("*.monitor.csv"):
            old.unlink()
        env = pen_env(guarded=True)
        monitored = Monitor(env, str(run_dir / "0"), info_keywords=env.info_keywords)
        for spin in spins:
            if spin:
                spin_the_pen(monitored, 2e3)
            else:
                monitored.reset(seed=0)
                done = False
                while not done:
                    _, _, terminated, truncated, _ = monitored.step(np.zeros(env.action_space.shape, np.float32))
                    done = terminated or truncated
        monitored.close()
        episodes = pd.read_csv(run_dir / "0.monitor.csv", skiprows=1)
        assert episodes["diverged"].tolist() == spins  # one row per episode, flagged as played
        flags.append(np.mean(spins))
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(logs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "final.csv").set_index("noise")
    assert table.loc["lattice", "diverged"] == pytest.approx(np.mean(flags))  # (0 + 1/3) / 2
    assert table.loc["isotropic", "diverged"] == 0.0  # the elbow runs' own monitor files: nothing diverged
    assert "diverged (mean, 95% CI)" in (out / "final.md").read_text()


@pytest.mark.parametrize("windows", [1, 2])
def test_windows_are_each_runs_mean_over_its_evaluations_in_the_span_then_across_seeds(runs, tmp_path, windows):
    """--windows N: the steps split into N equal spans ending at the last evaluation (the tiny runs evaluate at 64
    and 128 steps: one span holds both, two spans one each); per span each run's mean, then the mean across its
    seeds with the bootstrap interval of those per-run means."""
    out = tmp_path / "report"
    result = plot(str(runs), "--out", str(out), "--windows", str(windows))
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "windows.csv")
    for noise in ("isotropic", "lattice"):
        per_run: dict[str, list[np.ndarray]] = {"return": [], "effort": [], "success": []}
        with_success = np.zeros(windows, dtype=int)  # evaluations (of any run) in each span with a solved episode
        for run_dir in (runs / "ppo").iterdir():
            if load_yaml(run_dir / "config.yml")["noise"] != noise:
                continue
            data = np.load(run_dir / "evaluations.npz")
            assert data["timesteps"].tolist() == [64, 128]
            spans = [[0, 1]] if windows == 1 else [[0], [1]]  # evaluation indices in each span
            for column, key in (("return", "results"), ("effort", "ep_effort"), ("success", "successes")):
                means = data[key].mean(axis=1)
                per_run[column].append(np.array([means[span].mean() for span in spans]))
            with_success += [int((data["successes"].mean(axis=1)[span] > 0).sum()) for span in spans]
        rows = table[table["noise"] == noise].sort_values("window")
        assert rows["window"].tolist() == list(range(1, windows + 1))
        assert rows["seeds"].tolist() == [2] * windows
        assert rows["evaluations"].tolist() == [4 // windows] * windows
        for column, values in per_run.items():
            by_span = np.stack(values)  # runs × spans
            assert rows[column].to_numpy() == pytest.approx(by_span.mean(axis=0)), column
        for span, row in enumerate(rows.itertuples()):
            values = np.stack(per_run["return"])[:, span]
            assert values[0] != values[1]  # the seeds' returns differ (seeded runs: always), so the bootstrap runs
            assert (row.return_low, row.return_high) == pytest.approx(bootstrap_interval(values))
        assert rows["with_success"].tolist() == with_success.tolist()
    steps = "64-128" if windows == 1 else "128-128"
    assert f"| myoElbowPose1D6MRandom-v0 | ppo | lattice | {steps} | 2 | " in (out / "final.md").read_text()
    assert "Learning-curve windows" in (out / "final.md").read_text()


def test_a_negative_number_of_windows_exits_2_before_writing(runs, tmp_path):
    result = plot(str(runs), "--out", str(tmp_path / "report"), "--windows", "-1")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --windows -1: the number of spans must be 0 (none) or a positive integer"
    ]
    assert not (tmp_path / "report").exists()
    result = plot(str(runs), "--out", str(tmp_path / "report"))
    assert result.returncode == 0 and not (tmp_path / "report" / "windows.csv").exists()
