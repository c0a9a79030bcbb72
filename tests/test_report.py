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
import rliable.metrics
import scipy.stats
from filelock import FileLock
from stable_baselines3.common.monitor import Monitor

from lattice.experiments.config import load_yaml
from lattice.experiments.errors import ConfigError
from lattice.experiments.report import write_report
from tests.conftest import session_folder
from tests.helpers import RENDER, ROOT, pen_env, spin_the_pen, tiny_run_args

PLOT = str(ROOT / "experiments" / "plot.py")


def t_interval(values) -> tuple[float, float]:
    """The textbook 95% t-interval of the mean of one value per seed, mean ± t₀.₉₇₅,ₙ₋₁ · s / √n, computed here;
    seeds that tie (a success rate of 0 in every seed) have no spread: the interval is the value itself."""
    values = np.asarray(values, dtype=np.float64)
    half = scipy.stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


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
        for run_dir in sorted((runs / "ppo").iterdir(), key=lambda run: load_yaml(run / "config.yml")["seed"]):
            config = (run_dir / "config.yml").read_text()
            if f"noise: {noise}\n" not in config:
                continue
            data = np.load(run_dir / "evaluations.npz")
            finals["return"].append(data["results"][-1].mean())
            finals["effort"].append(data["ep_effort"][-1].mean())
            finals["success"].append(data["successes"][-1].mean())
        row = table[table["noise"] == noise].iloc[0]
        assert len(finals["return"]) == 2
        # The seeds' returns differ (the runs are seeded: always), so the interval below is always a real one.
        assert finals["return"][0] != finals["return"][1]
        for column, values in finals.items():
            assert row[column] == pytest.approx(np.mean(values)), column
            low, high = t_interval(values)
            if column != "return":  # cut to the values the metric can take: success in [0, 1], effort >= 0
                low, high = max(low, 0.0), min(high, 1.0) if column == "success" else high
            assert (row[f"{column}_low"], row[f"{column}_high"]) == pytest.approx((low, high)), column
        # Each seed's value beside the aggregate, in seed order (seeds 0, 1).
        assert row["seed_ids"] == "0 1"
        returns, successes = (", ".join(f"{v:.{d}f}" for v in finals[c]) for c, d in (("return", 2), ("success", 3)))
        assert (
            f"| myoElbowPose1D6MRandom-v0 | ppo | {noise} | 2 | 128 | {row['return']:.2f} [{row['return_low']:.2f}, "
            f"{row['return_high']:.2f}] | {returns} | {row['success']:.4f} [" in (out / "final.md").read_text()
        )
        assert f" | {successes} | " in (out / "final.md").read_text()
    assert "Intervals: the mean over seeds ± t₀.₉₇₅,ₙ₋₁ · s / √n" in (out / "final.md").read_text()
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
    welch = scipy.stats.ttest_ind(a, b, equal_var=False)  # Welch's interval and p-value of the difference
    assert (row["return_low"], row["return_high"]) == pytest.approx(tuple(welch.confidence_interval(0.95)))
    assert row["return_p"] == pytest.approx(welch.pvalue)
    # The energy's relative change: Fieller's interval of the ratio of means, each end solving its quadratic.
    a, b = lattice["effort"].to_numpy(), isotropic["effort"].to_numpy()
    var_a, var_b = a.var(ddof=1) / 2, b.var(ddof=1) / 2
    ratio = a.mean() / b.mean()
    t = scipy.stats.t.ppf(0.975, (var_a + ratio**2 * var_b) ** 2 / (var_a**2 + ratio**4 * var_b**2))
    for end in (row["effort_low"], row["effort_high"]):
        if not np.isnan(end):  # 2 seeds: the baseline may not be told apart from 0, then there is no interval
            assert (a.mean() - (1 + end) * b.mean()) ** 2 == pytest.approx(t**2 * (var_a + (1 + end) ** 2 * var_b))
    a, b = lattice["return"].to_numpy(), isotropic["return"].to_numpy()
    assert row["return_poi"] == pytest.approx(rliable.metrics.probability_of_improvement(a[:, None], b[:, None]))
    assert row["return_poi_low"] <= row["return_poi"] <= row["return_poi_high"]
    text = (out / "final.md").read_text()
    assert (
        f"| myoElbowPose1D6MRandom-v0 | ppo | lattice | isotropic | 2 vs 2 | {row['return']:+.2f} "
        f"[{row['return_low']:+.2f}, {row['return_high']:+.2f}] p={row['return_p']:.2g} | {row['return_poi']:.2f} ["
        in text
    )
    assert "differences of means with Welch's t-interval and p-value" in text


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
        f"- {stopped.name}: last evaluation at 0 steps; stopped at 32 steps: ValueError: Non-finite"
        in (out / "final.md").read_text()
    )


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
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: no such folder or file: {tmp_path / 'nowhere'}"


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


@pytest.mark.fast
def test_group_labels_name_a_setting_by_its_last_part_unless_two_share_it():
    from lattice.experiments.report import label_settings

    settings = [
        "{hyperparams.learning_rate: 0.0001, hyperparams.target_kl: null, a.net_arch: 1, b.net_arch: 1}",
        "{hyperparams.learning_rate: 2.0e-05, hyperparams.target_kl: null, a.net_arch: 2, b.net_arch: 1}",
        "{hyperparams.learning_rate: 0.0001, hyperparams.target_kl: 0.03, a.net_arch: 1, b.net_arch: 2}",
    ]
    rows = pd.DataFrame({"env": "e", "algo": "ppo", "noise": "lattice", "settings": settings})
    assert list(label_settings(rows)["noise"]) == [
        "lattice a.net_arch=1 b.net_arch=1 learning_rate=0.0001 target_kl=None",
        "lattice a.net_arch=2 b.net_arch=1 learning_rate=2e-05 target_kl=None",
        "lattice a.net_arch=1 b.net_arch=2 learning_rate=0.0001 target_kl=0.03",
    ]


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
        assert data["timesteps"][0] == 0  # the untrained policy: its own column, in no success bin
        successes, efforts = data["successes"].mean(axis=1), data["ep_effort"].mean(axis=1)
        for step, success, effort in zip(data["timesteps"], successes, efforts, strict=True):
            expected.setdefault((noise, "step 0" if step == 0 else bins[float(success)]), []).append(effort)
    table = pd.read_csv(out / "energy_by_success.csv")
    assert set(table["energy"]) == {"effort"}
    got = {(row.noise, row.success_bin): (row.mean, row.evaluations) for row in table.itertuples()}
    assert got == {key: (pytest.approx(np.mean(values)), len(values)) for key, values in expected.items()}
    assert "by success rate" in (out / "final.md").read_text()
    assert "| env | algo | noise | step 0 | success 0 |" in (out / "final.md").read_text()
    assert (out / "myoElbowPose1D6MRandom-v0_energy_vs_performance.png").stat().st_size > 10_000


def test_chance_baselines_are_the_tasks_zero_and_random_policies_on_each_seeds_evaluation_env(runs, tmp_path):
    """chance.csv: the zero-action and random policies on the evaluation env of each seed the runs have (0 and 1),
    with the runs' episodes, as chance.chance_evaluations gives them; final.md tabulates them; --no-chance leaves
    them out."""
    from lattice.experiments.chance import chance_evaluations
    from lattice.experiments.config import RunConfig

    out = tmp_path / "report"
    result = subprocess.run([sys.executable, PLOT, str(runs), "--out", str(out)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    chance = pd.read_csv(out / "chance.csv")
    config = RunConfig.of(load_yaml(next((runs / "ppo").iterdir()) / "config.yml"))
    expected = chance_evaluations(config, [0, 1])
    assert len(chance) == 4 and list(chance["episodes"]) == [config.eval_episodes] * 4
    assert list(chance["noise"]) == ["zero action"] * 2 + ["random action"] * 2
    for column in ("seed", "return", "success", "effort", "act_sq", "action_sq"):
        assert chance[column].tolist() == pytest.approx(expected[column].tolist()), column
    text = (out / "final.md").read_text()
    assert "Chance baselines" in text and "| myoElbowPose1D6MRandom-v0 | none | zero action | 2 | 0 |" in text

    bare = tmp_path / "bare"
    result = subprocess.run(
        [sys.executable, PLOT, str(runs), "--out", str(bare), "--no-chance"], capture_output=True, text=True
    )
    assert result.returncode == 0 and not (bare / "chance.csv").exists()
    assert "Chance baselines" not in (bare / "final.md").read_text()


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
    """--windows N: the steps split into N equal spans ending at the last evaluation (the tiny runs evaluate at 0,
    64 and 128 steps: one span holds all three; of two spans, (0, 64] and step 0 the first, (64, 128] the second);
    per span each run's mean, then the mean across its seeds with the t-interval of those per-run means, and each
    seed's mean in seed order."""
    out = tmp_path / "report"
    result = plot(str(runs), "--out", str(out), "--windows", str(windows))
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "windows.csv")
    for noise in ("isotropic", "lattice"):
        per_run: dict[str, list[np.ndarray]] = {"return": [], "effort": [], "success": []}
        with_success = np.zeros(windows, dtype=int)  # evaluations (of any run) in each span with a solved episode
        for run_dir in sorted((runs / "ppo").iterdir(), key=lambda run: load_yaml(run / "config.yml")["seed"]):
            if load_yaml(run_dir / "config.yml")["noise"] != noise:
                continue
            data = np.load(run_dir / "evaluations.npz")
            assert data["timesteps"].tolist() == [0, 64, 128]
            spans = [[0, 1, 2]] if windows == 1 else [[0, 1], [2]]  # evaluation indices in each span
            for column, key in (("return", "results"), ("effort", "ep_effort"), ("success", "successes")):
                means = data[key].mean(axis=1)
                per_run[column].append(np.array([means[span].mean() for span in spans]))
            with_success += [int((data["successes"].mean(axis=1)[span] > 0).sum()) for span in spans]
        rows = table[table["noise"] == noise].sort_values("window")
        assert rows["window"].tolist() == list(range(1, windows + 1))
        assert rows["seeds"].tolist() == [2] * windows
        assert rows["evaluations"].tolist() == ([6] if windows == 1 else [4, 2])  # of 2 runs
        for column, values in per_run.items():
            by_span = np.stack(values)  # runs × spans
            assert rows[column].to_numpy() == pytest.approx(by_span.mean(axis=0)), column
        for span, row in enumerate(rows.itertuples()):
            values = np.stack(per_run["return"])[:, span]
            assert values[0] != values[1]  # the seeds' returns differ (seeded runs: always): a real interval
            assert (row.return_low, row.return_high) == pytest.approx(t_interval(values))
            assert row.return_per_seed == " ".join(f"{v:.2f}" for v in values)
        assert rows["with_success"].tolist() == with_success.tolist()
    steps = "0-128" if windows == 1 else "128-128"
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


def test_steps_reports_each_run_as_it_was_then(runs, tmp_path):
    """--steps 64: every run (evaluated at 0, 64 and 128 steps) as it was at 64 steps, its evaluation there its
    final one; --steps 0 exits 2 before anything is written."""
    out = tmp_path / "report"
    result = plot(str(runs), "--out", str(out), "--steps", "64", "--no-chance")
    assert result.returncode == 0, result.stderr[-3000:]
    table = pd.read_csv(out / "final.csv").set_index("noise")
    assert (table["timesteps"] == 64).all() and (table["seeds"] == 2).all()
    for noise in ("isotropic", "lattice"):
        returns = []
        for run_dir in (runs / "ppo").iterdir():
            if load_yaml(run_dir / "config.yml")["noise"] == noise:
                data = np.load(run_dir / "evaluations.npz")
                returns.append(data["results"][list(data["timesteps"]).index(64)].mean())
        assert table.loc[noise, "return"] == pytest.approx(np.mean(returns))
    assert set(pd.read_csv(out / "evaluations.csv")["timesteps"]) == {0, 64}
    result = plot(str(runs), "--out", str(tmp_path / "none"), "--steps", "0")
    assert result.returncode == 2 and result.stderr.strip() == "error: --steps 0: give a positive number of steps"
    assert not (tmp_path / "none").exists()


COMMITTED = ROOT / "results" / "hand_pen"  # made by: lattice-plot results/hand_pen/evaluations.csv --windows 2 ...


@pytest.mark.fast
def test_a_report_made_again_from_its_evaluations_csv_is_byte_identical(tmp_path):
    """A committed report's run folders are gone, its evaluations.csv is not: the report made again from it gives
    the committed tables byte for byte, and two reports give the same figures byte for byte (no date or version
    in the PNGs)."""
    reports = []
    for name in ("first", "second"):
        written = write_report([COMMITTED / "evaluations.csv"], tmp_path / name, windows=2)
        reports.append({path.name: path.read_bytes() for path in written})
    assert reports[0] == reports[1]
    tables = {"final.md", "final.csv", "comparison.csv", "evaluations.csv", "energy_by_success.csv", "windows.csv"}
    tables.add("chance.csv")
    figures = {"myoHandPenTwirlRandom-v0.png", "myoHandPenTwirlRandom-v0_energy_vs_performance.png"}
    assert set(reports[0]) == tables | figures
    for name in tables:
        assert reports[0][name] == (COMMITTED / name).read_bytes(), name
    for name in figures:
        assert b"Matplotlib version" not in reports[0][name]


@pytest.mark.fast
def test_a_bad_evaluations_csv_exits_2_naming_it(tmp_path):
    """Not a report's evaluations.csv (other columns, binary bytes), or one given with run folders: one line naming
    the file, before anything is written."""
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(bytes(range(256)))
    columns = "timesteps, return, env, algo, noise, seed, run, status"
    for paths, message in (
        ([other], f"{other}: not an evaluations.csv of lattice-plot (no column {columns})"),
        ([binary], f"{binary}: not an evaluations.csv of lattice-plot ("),
        ([COMMITTED / "evaluations.csv", tmp_path], "evaluations.csv: give run folders, or evaluations.csv files"),
    ):
        with pytest.raises(ConfigError) as error:
            write_report(paths, tmp_path / "report")
        assert message in str(error.value) and len(str(error.value).splitlines()) == 1
    result = plot(str(other), "--out", str(tmp_path / "report"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {other}: not an evaluations.csv of lattice-plot (no column {columns})"
    ]
    assert not (tmp_path / "report").exists()
