"""Reports of runs: one run's figures (``plot_run``), and reports over seeds × noises × tasks (``write_report``)
from the run folders under some paths, or again from the ``evaluations.csv`` of an earlier report. This module
reads the runs and assembles the report; the statistics and their tables are ``stats``', the Markdown ``tables``',
the figures ``plots``'.

Evaluation points come from ``evaluations.npz`` (deterministic policy, separate env); training points from
``progress.csv`` (SB3's running means over the last 100 training episodes, at exact step counts). Intervals over
seeds are Student-t intervals of the mean, or rliable's stratified bootstrap intervals of the IQM (``stats``).

Runs are grouped by task, algorithm and setting: the noise, plus whatever else differs between the runs of one
noise (``lattice T=1`` and ``lattice T=4`` when a sweep varied the noise period); seeds are the runs of a group.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from stable_baselines3.common.monitor import LoadMonitorResultsError, load_results

from lattice.envs import DIVERGED
from lattice.experiments import rundir
from lattice.experiments.dotted import flatten
from lattice.experiments.errors import ConfigError
from lattice.experiments.plots import plot_energy_vs_performance, plot_report, plot_run_curves
from lattice.experiments.rundir import RunDir
from lattice.experiments.stats import (
    METRICS,
    UPDATE_METRICS,
    comparison_table,
    energy_by_success,
    final_table,
    last_evaluations,
    window_table,
)
from lattice.experiments.tables import (
    comparison_note,
    markdown_comparison,
    markdown_energy,
    markdown_table,
    markdown_windows,
)

# Config keys that name a group, or say where a run ran (device, vec_env), rather than tell apart settings within
# one (env_kwargs: label_tasks's job).
IDENTITY_KEYS = ("env", "algo", "noise", "seed", "env_kwargs", "device", "vec_env")
SHORT_NAMES = {"noise_period": "T"}  # the paper's notation in setting labels


def training_progress(run_dir: Path, key: str = "rollout/ep_rew_mean") -> pd.DataFrame:
    """Rows of ``progress.csv`` that have ``key`` (by default the training statistics), one per step count.

    After a resume the steps restart at the checkpoint; rows of the discarded stretch are dropped, so the curve
    follows the training that produced the final model.
    """
    path = run_dir / rundir.PROGRESS
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    df = pd.read_csv(path)
    if key not in df or "time/total_timesteps" not in df:
        return pd.DataFrame()
    df = df.dropna(subset=[key, "time/total_timesteps"])
    steps = df["time/total_timesteps"].to_numpy()
    # Keep a row only if no later row has a smaller or equal step count (a later, resumed stretch).
    later_min = np.minimum.accumulate(steps[::-1])[::-1]
    keep = np.append(steps[:-1] < later_min[1:], True) if len(steps) else np.array([], dtype=bool)
    return df[keep]


def plot_run(run_dir: Path) -> list[Path]:
    """Write ``learning_curve.png`` and (when energy was logged) ``energy.png`` into ``run_dir``."""
    evaluations, progress = RunDir(run_dir).evaluations(), training_progress(run_dir)
    curve, energy = run_dir / rundir.LEARNING_CURVE, run_dir / rundir.ENERGY_PLOT
    return plot_run_curves(evaluations, progress, run_dir.name, curve, energy)


UPDATE_COUNT = "train/n_updates"  # SB3's count of gradient epochs so far, logged with each update's statistics


def update_sizes(run_dir: Path) -> dict[str, float]:
    """The median over a run's updates of each ``UPDATE_METRICS`` entry it logged (PPO and RecurrentPPO do), each
    update counted once."""
    path = run_dir / rundir.PROGRESS
    if not path.exists() or path.stat().st_size == 0:
        return {}
    progress = pd.read_csv(path)
    sizes = {}
    for column, (key, _) in UPDATE_METRICS.items():
        if key not in progress or UPDATE_COUNT not in progress:
            continue
        # SB3 logs an update's statistics with the next dump: an evaluation's, the next training row, or both (then
        # the same update twice). Its update count names it; after a resume the count restarts at the checkpoint's,
        # so the last row of each count is the update of the training that made the final model.
        rows = progress.dropna(subset=[key, UPDATE_COUNT]).drop_duplicates(UPDATE_COUNT, keep="last")
        if not rows.empty:
            sizes[column] = float(rows[key].median())
    return sizes


def diverged_fraction(run_dir: Path) -> float | None:
    """The fraction of a run's training episodes that ``SimulationGuard`` ended because the simulation diverged
    (the ``diverged`` column of its monitor CSVs), or None when the run did not record it (no guard, or a run
    begun before the column existed).

    Every episode the run's envs played counts, including any played after its last checkpoint before a resume.
    """
    try:
        episodes = load_results(str(run_dir))
    except LoadMonitorResultsError:  # no monitor file
        return None
    if DIVERGED not in episodes or episodes.empty:
        return None
    return float(episodes[DIVERGED].astype(bool).mean())


def find_runs(paths: list[Path]) -> list[Path]:
    """Run folders (with ``config.yml`` and ``command.txt``) at or below ``paths``, sorted."""
    found = set()
    for path in paths:
        for config in [path / rundir.CONFIG, *path.rglob(rundir.CONFIG)]:
            if config.is_file() and RunDir(config.parent).is_run():
                found.add(config.parent)
    return sorted(found)


def run_evaluations(run_dir: Path) -> pd.DataFrame:
    """One row per evaluation of a run: its settings, status, the step count and each metric's mean over episodes."""
    run = RunDir(run_dir)
    config = run.config()
    missing = [key for key in ("env", "algo", "noise", "seed") if key not in config]
    if missing:
        raise ConfigError(f"{run / rundir.CONFIG} has no {', '.join(missing)}")
    data = run.evaluations() or {"timesteps": np.zeros(1, dtype=np.int64)}  # none yet: step 0
    frame = pd.DataFrame({"timesteps": data["timesteps"]})
    for column, (key, _) in METRICS.items():
        if key in data:
            frame[column] = np.mean(np.asarray(data[key], dtype=np.float64), axis=1)
    for column, value in update_sizes(run_dir).items():
        frame[column] = value
    diverged = diverged_fraction(run_dir)
    if diverged is not None:
        frame[DIVERGED] = diverged
    for key in ("env", "algo", "noise", "seed"):
        frame[key] = config[key]
    frame["env_kwargs"] = yaml.safe_dump(config.get("env_kwargs") or {}, default_flow_style=True).strip()
    settings = {k: v for k, v in flatten(config).items() if k.split(".")[0] not in IDENTITY_KEYS}
    frame["settings"] = yaml.safe_dump(settings, default_flow_style=True, width=10**6).strip()
    frame["run"] = str(run_dir)
    frame["status"] = run.status()
    return frame


def label_tasks(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Name each task by its env id without namespace, plus the env keywords that tell apart runs of one id
    (e.g. ``OveractuatedReach-v0 n_actuators=16``), in the ``env`` column."""
    labels = evaluations["env"].str.rsplit("/", n=1).str[-1]
    for env, group in evaluations.groupby("env"):
        variants = {text: yaml.safe_load(text) for text in group["env_kwargs"].unique()}
        if len(variants) < 2:
            continue
        keys = sorted({k for kwargs in variants.values() for k in kwargs})
        differing = [k for k in keys if len({repr(kwargs.get(k)) for kwargs in variants.values()}) > 1]
        for text, kwargs in variants.items():
            suffix = " ".join(f"{k}={kwargs.get(k)}" for k in differing)
            rows = (evaluations["env"] == env) & (evaluations["env_kwargs"] == text)
            labels[rows] = f"{labels[rows].iloc[0]} {suffix}"
    return evaluations.assign(env=labels)


def label_settings(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Name each group of runs by its noise plus the settings that differ between runs of that noise on one task
    and algorithm (e.g. ``lattice T=4``), in the ``noise`` column; the suffix alone goes to ``setting``."""
    evaluations = evaluations.assign(setting="")
    for _, group in evaluations.groupby(["env", "algo", "noise"]):
        variants = {text: yaml.safe_load(text) for text in group["settings"].unique()}
        if len(variants) < 2:
            continue
        keys = sorted({k for settings in variants.values() for k in settings})
        differing = [k for k in keys if len({repr(settings.get(k)) for settings in variants.values()}) > 1]
        for text, settings in variants.items():
            suffix = " ".join(f"{_short_name(k, differing)}={settings.get(k)}" for k in differing)
            rows = group.index[group["settings"] == text]
            evaluations.loc[rows, "setting"] = suffix
            evaluations.loc[rows, "noise"] = f"{group['noise'].iloc[0]} {suffix}"
    return evaluations


def _short_name(key: str, keys: list[str]) -> str:
    """A setting's name in a group label: the paper's (``T``), else its last dotted part (``target_kl`` for
    ``hyperparams.target_kl``) unless another of ``keys`` ends the same way."""
    last = key.rsplit(".", 1)[-1]
    if key in SHORT_NAMES:
        return SHORT_NAMES[key]
    return last if [k.rsplit(".", 1)[-1] for k in keys].count(last) == 1 else key


def read_runs(runs: list[Path]) -> tuple[pd.DataFrame, dict[Path, str]]:
    """The evaluations of every run that can be read (``run_evaluations``), and why each other one cannot (a
    ``config.yml`` emptied or cut short, a damaged ``evaluations.npz``): one bad folder does not stop a report."""
    frames, unreadable = [], {}
    for run in runs:
        try:
            frames.append(run_evaluations(run))
        except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as e:  # ConfigError too
            unreadable[run] = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0]}"
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), unreadable


# The columns a report's evaluations.csv has whatever its tasks logged (``run_evaluations``, labelled).
REPORT_COLUMNS = ("timesteps", "return", "env", "algo", "noise", "seed", "run", "status")
REPORT_CSV = "evaluations.csv"


def read_report_csv(path: Path) -> pd.DataFrame:
    """The evaluations of an earlier report (its ``evaluations.csv``: every evaluation it reported, its tasks and
    settings already labelled), to report them again when the run folders are gone.

    :raises ConfigError: when ``path`` is not such a file (naming it and what is wrong).
    """
    try:
        frame = pd.read_csv(path)
    except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError and EmptyDataError are ValueErrors
        raise ConfigError(f"{path}: not an {REPORT_CSV} of lattice-plot ({(str(e).splitlines() or [''])[0]})") from e
    missing = [column for column in REPORT_COLUMNS if column not in frame]
    if missing:
        raise ConfigError(f"{path}: not an {REPORT_CSV} of lattice-plot (no column {', '.join(missing)})")
    return frame


def read_evaluations(paths: list[Path]) -> tuple[pd.DataFrame, dict[Path, str], pd.DataFrame | None]:
    """Every evaluation under ``paths``, labelled (``label_tasks``, ``label_settings``): from the run folders at or
    below them (``find_runs``, ``read_runs``), or from earlier reports' ``evaluations.csv`` files given instead.

    :return: The evaluations; the run folders that cannot be read, with why; and, from CSV files, the rows as read
        (what the new report writes back as its ``evaluations.csv``, so that a report made again into its own
        folder leaves its data as they were), else None.
    :raises ConfigError: for a file that is not such a CSV, or CSV files and folders together.
    :raises FileNotFoundError: when no run can be read.
    """
    files = [path for path in paths if not path.is_dir()]
    if files:
        if len(files) < len(paths):
            raise ConfigError(
                f"{files[0]}: give run folders, or {REPORT_CSV} files of earlier reports, not both in one report"
            )
        read = pd.concat([read_report_csv(path) for path in files], ignore_index=True)
        return read, {}, read
    runs = find_runs(paths)
    if not runs:
        raise FileNotFoundError(f"No run folders (config.yml + command.txt) under {', '.join(map(str, paths))}")
    evaluations, unreadable = read_runs(runs)
    if evaluations.empty:
        raise FileNotFoundError(
            f"No readable run folder under {', '.join(map(str, paths))}: "
            + "; ".join(f"{run}: {why}" for run, why in unreadable.items())
        )
    return label_settings(label_tasks(evaluations)), unreadable, None


CHANCE_CSV = "chance.csv"


def write_report(
    paths: list[Path],
    out: Path,
    statistic: str = "mean",
    baseline: str = "isotropic",
    unfinished: bool = False,
    baseline_required: bool = False,
    windows: int = 0,
    chance: bool = True,
    steps: int | None = None,
) -> list[Path]:
    """Find the run folders under ``paths`` (or read the ``evaluations.csv`` files given instead:
    ``read_evaluations``); write per-env figures, ``final.md``, ``final.csv``, ``comparison.csv`` and
    ``evaluations.csv`` into ``out``. The same input gives the same files, byte for byte (figures included).

    Only finished runs enter the figures and tables (a run stopped by an error, or still running, would be
    compared at fewer steps); the others are listed in ``final.md`` with their status and last evaluation.
    ``unfinished=True`` includes them at their last evaluation (e.g. to look at a sweep in progress). Run folders
    that cannot be read are skipped and listed.

    :param windows: Also write ``windows.csv`` and a table in ``final.md``: the curves' means over this many equal
        spans of training (``window_table``); 0 for none, a negative number raises ConfigError before anything is
        read or written.
    :param baseline_required: Raise ConfigError (naming the noises present) when no reported run has the
        ``baseline`` noise; otherwise ``final.md`` says that there is no comparison, and why.
    :param steps: Report every run as it was at this many steps: its evaluations up to ``steps``, the last of them
        its final one (e.g. runs of a longer budget at the budget of another report); a run that trained that far
        counts as finished. None: as the runs ended. The runs' own statistics (update sizes, diverged episodes)
        stay those of their whole runs.
    :param chance: Also evaluate each task's chance baselines (``chance.chance_baselines``: seconds per task) into
        ``chance.csv``, a table in ``final.md`` and dashed lines in the figures.
    :raises FileNotFoundError: when no run can be reported.
    """
    if windows < 0:
        raise ConfigError(f"--windows {windows}: the number of spans must be 0 (none) or a positive integer")
    if steps is not None and steps <= 0:
        raise ConfigError(f"--steps {steps}: give a positive number of steps")
    evaluations, unreadable, read = read_evaluations(paths)
    if steps is not None:  # each run as it was at `steps`: finished there if it trained past them
        trained = evaluations.groupby("run")["timesteps"].transform("max") >= steps
        evaluations = evaluations.assign(status=evaluations["status"].where(~trained, "finished"))
        evaluations = evaluations[evaluations["timesteps"] <= steps]
    done = evaluations["status"] == "finished"
    # with --unfinished, only runs that have not evaluated yet are left out
    evaluated = evaluations["return"].notna() if "return" in evaluations else pd.Series(False, evaluations.index)
    keep = evaluated if unfinished else done
    left_out = last_evaluations(evaluations[~keep])
    evaluations = evaluations[keep]
    if evaluations.empty:
        raise FileNotFoundError(
            f"No {'evaluated' if unfinished else 'finished'} runs under {', '.join(map(str, paths))} "
            f"({len(left_out)} left out)" + ("" if unfinished else "; pass --unfinished to report them")
        )
    finals = last_evaluations(evaluations)
    noises = sorted(finals["noise"].unique())
    if baseline not in noises and baseline_required:
        raise ConfigError(
            f"--baseline {baseline}: no reported run has noise {baseline!r}; noises present: {', '.join(noises)}"
        )
    table = final_table(finals, statistic)
    comparison = comparison_table(finals, baseline, statistic)
    floors, no_floor = pd.DataFrame(), dict[str, str]()
    if chance:  # the envs and the training layer, only for a report that evaluates its baselines
        from lattice.experiments.chance import chance_baselines

        floors, no_floor = chance_baselines(finals)
    floor_table = final_table(floors, statistic) if not floors.empty else pd.DataFrame()
    out.mkdir(parents=True, exist_ok=True)
    written = plot_report(evaluations, table, out, statistic, floor_table)
    written += plot_energy_vs_performance(evaluations, out)
    energy = energy_by_success(evaluations)
    text = markdown_table(table, statistic)
    if not comparison.empty:
        text += "\n" + comparison_note(baseline, statistic) + "\n" + markdown_comparison(comparison, statistic)
    elif baseline not in noises and len(noises) > 1:
        text += f"\nNo comparison: no run has the baseline noise {baseline!r} (present: {', '.join(noises)}).\n"
    if not floor_table.empty:
        text += (
            "\nChance baselines: policies that learnt nothing, each on the evaluation env of every seed above with its "
            "episodes (zero action: the action 0 at every step; random action: uniform over the action box):\n\n"
        )
        text += markdown_table(floor_table, statistic)
    text += "".join(f"\nNo chance baseline for {env}: {why}.\n" for env, why in no_floor.items())
    if not energy.empty:
        text += "\n" + markdown_energy(energy)
    spans = window_table(evaluations, windows, statistic) if windows else pd.DataFrame()
    if not spans.empty:
        text += "\n" + markdown_windows(spans, statistic)
    if not left_out.empty:
        text += f"\nLeft out (not {'evaluated' if unfinished else 'finished'}):\n\n" + "".join(
            f"- {Path(row['run']).name}: "
            + (f"last evaluation at {row['timesteps']:,} steps" if pd.notna(row.get("return")) else "no evaluation")
            + f"; {row['status']}\n"
            for _, row in left_out.iterrows()
        )
    if unreadable:
        text += "\nSkipped (cannot be read):\n\n" + "".join(f"- {run}: {why}\n" for run, why in unreadable.items())
    (out / "final.md").write_text(text)
    table.to_csv(out / "final.csv", index=False)
    comparison.to_csv(out / "comparison.csv", index=False)
    (evaluations if read is None else read).to_csv(out / REPORT_CSV, index=False)
    tables = [out / "final.md", out / "final.csv", out / "comparison.csv", out / REPORT_CSV]
    if not floors.empty:
        floors.to_csv(out / CHANCE_CSV, index=False)
        tables.append(out / CHANCE_CSV)
    if not energy.empty:
        energy.to_csv(out / "energy_by_success.csv", index=False)
        tables.append(out / "energy_by_success.csv")
    if not spans.empty:
        spans.to_csv(out / "windows.csv", index=False)
        tables.append(out / "windows.csv")
    return [*written, *tables]
