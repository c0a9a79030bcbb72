"""Figures and tables of runs: one run's learning curve and energy; reports over seeds × noises × tasks.

Evaluation points come from ``evaluations.npz`` (deterministic policy, separate env); training points from
``progress.csv`` (SB3's running means over the last 100 training episodes, at exact step counts). Intervals over
seeds are 95% percentile bootstraps from ``scipy.stats.bootstrap``.

Runs are grouped by task, algorithm and setting: the noise, plus whatever else differs between the runs of one
noise (``lattice T=1`` and ``lattice T=4`` when a sweep varied the noise period); seeds are the runs of a group.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
import yaml
from matplotlib.figure import Figure  # figures drawn straight to files: no pyplot, no process-wide backend
from stable_baselines3.common.monitor import LoadMonitorResultsError, load_results

from lattice.envs import ACT_SQ, ACTION_SQ, DIVERGED, EFFORT
from lattice.experiments import rundir
from lattice.experiments.config import ConfigError
from lattice.experiments.rundir import RunDir

ENERGY_LABELS = {
    EFFORT: "effort ‖act‖₂ / n_muscles",
    ACT_SQ: "mean act²",
    ACTION_SQ: "mean a² (action)",
}


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
    evaluations = RunDir(run_dir).evaluations()
    progress = training_progress(run_dir)
    title = run_dir.name
    written = []

    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    if evaluations:
        steps, returns = evaluations["timesteps"], np.asarray(evaluations["results"])
        mean, std = returns.mean(axis=1), returns.std(axis=1)
        ax.plot(steps, mean, marker="o", label=f"evaluation (mean ± sd of {returns.shape[1]} episodes)")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    if not progress.empty:
        ax.plot(progress["time/total_timesteps"], progress["rollout/ep_rew_mean"], label="training (last 100 episodes)")
    ax.set(xlabel="environment steps", ylabel="episode return", title=f"Learning curve: {title}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(run_dir / rundir.LEARNING_CURVE, dpi=120)
    written.append(run_dir / rundir.LEARNING_CURVE)

    keys = [k for k in ENERGY_LABELS if k in evaluations or f"rollout/{k}" in progress]
    if keys:
        fig = Figure(figsize=(4.5 * len(keys), 3.8))
        axes = fig.subplots(1, len(keys), squeeze=False)
        for ax, key in zip(axes[0], keys, strict=True):
            if key in evaluations:
                ax.plot(evaluations["timesteps"], np.mean(evaluations[key], axis=1), marker="o", label="evaluation")
            if f"rollout/{key}" in progress:
                rows = progress.dropna(subset=[f"rollout/{key}"])
                ax.plot(rows["time/total_timesteps"], rows[f"rollout/{key}"], label="training")
            ax.set(xlabel="environment steps", ylabel=f"episode mean of {ENERGY_LABELS[key]}", title=ENERGY_LABELS[key])
            ax.grid(alpha=0.3)
            ax.legend()
        fig.suptitle(f"Energy: {title}")
        fig.tight_layout()
        fig.savefig(run_dir / rundir.ENERGY_PLOT, dpi=120)
        written.append(run_dir / rundir.ENERGY_PLOT)
    return written


# ---------------------------------------------------------------------------------------------------------------
# Reports over many runs (seeds × noises × tasks): curves with 95% bootstrap bands and a table of final values.

METRICS = {  # column → (evaluations.npz key, label)
    "return": ("results", "episode return"),
    "success": ("successes", "success rate"),
    "effort": (EFFORT, ENERGY_LABELS[EFFORT]),
    "act_sq": (ACT_SQ, ENERGY_LABELS[ACT_SQ]),
    "action_sq": (ACTION_SQ, ENERGY_LABELS[ACTION_SQ]),
}


# Per-run statistics of the PPO updates (from progress.csv): how far each update moved the policy. Medians over a
# run's updates, so that a few outliers (e.g. the first update) do not dominate.
UPDATE_METRICS = {  # column → (progress.csv key, label)
    "approx_kl": ("train/approx_kl", "approx-KL per update (run median)"),
    "clip_fraction": ("train/clip_fraction", "clip fraction per update (run median)"),
}

# Per-run statistics besides the evaluations, each one value per run: the update sizes, and how often the
# simulation diverged in training (``diverged_fraction``).
RUN_STATISTICS = (*UPDATE_METRICS, DIVERGED)

# Config keys that name a group rather than tell apart settings within one (env_kwargs: label_tasks's job).
IDENTITY_KEYS = ("env", "algo", "noise", "seed", "env_kwargs", "device")
SHORT_NAMES = {"noise_period": "T"}  # the paper's notation in setting labels


def update_sizes(run_dir: Path) -> dict[str, float]:
    """The median over a run's updates of each ``UPDATE_METRICS`` entry it logged (PPO and RecurrentPPO do)."""
    sizes = {}
    for column, (key, _) in UPDATE_METRICS.items():
        # SB3 logs an update's statistics with the next dump: a training row, or an evaluation's
        rows = training_progress(run_dir, key)
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


def _flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys (``hyperparams.policy_kwargs.alpha``), as ``--hyperparams`` names them."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
    settings = {k: v for k, v in _flatten_config(config).items() if k.split(".")[0] not in IDENTITY_KEYS}
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
            suffix = " ".join(f"{SHORT_NAMES.get(k, k)}={settings.get(k)}" for k in differing)
            rows = group.index[group["settings"] == text]
            evaluations.loc[rows, "setting"] = suffix
            evaluations.loc[rows, "noise"] = f"{group['noise'].iloc[0]} {suffix}"
    return evaluations


def _statistic(statistic: str) -> Callable[..., Any]:
    """The statistic over seeds as a function of (values, axis)."""
    if statistic not in ("mean", "iqm"):
        raise ValueError(f"Unknown statistic {statistic!r}; choose mean or iqm")
    if statistic == "iqm":
        return lambda x, axis=-1: scipy.stats.trim_mean(x, 0.25, axis=axis)
    return lambda x, axis=-1: np.mean(x, axis=axis)


def interval(values: np.ndarray, statistic: str = "mean") -> tuple[float, float, float]:
    """The statistic over seeds and its 95% percentile-bootstrap interval (scipy.stats.bootstrap).

    :param values: One value per seed.
    :param statistic: ``mean`` or ``iqm`` (interquartile mean, rliable's recommendation for few seeds).
    :return: (estimate, low, high); the interval is NaN with fewer than 2 seeds.
    """
    values = np.asarray(values, dtype=np.float64)
    stat = _statistic(statistic)
    estimate = float(stat(values))
    if len(values) < 2 or np.all(values == values[0]):
        return estimate, (np.nan if len(values) < 2 else estimate), (np.nan if len(values) < 2 else estimate)
    result = scipy.stats.bootstrap(
        (values,), stat, confidence_level=0.95, n_resamples=2000, method="percentile", random_state=0
    )
    return estimate, float(result.confidence_interval.low), float(result.confidence_interval.high)


def last_evaluations(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Each run's last evaluation (one row per run), ordered by run folder: the bootstrap resamples seeds by
    position, so a group's interval must not depend on which other runs are in the report."""
    return evaluations.sort_values(["run", "timesteps"]).groupby("run").tail(1)


def final_table(finals: pd.DataFrame, statistic: str = "mean") -> pd.DataFrame:
    """Per env × algo × noise: each metric at the runs' last evaluations (``last_evaluations``), and each run's
    own statistics (``RUN_STATISTICS``), across seeds, with 95% intervals."""
    rows = []
    for (env, algo, noise), group in finals.groupby(["env", "algo", "noise"], sort=True):
        row: dict[str, object] = {"env": env, "algo": algo, "noise": noise, "seeds": len(group)}
        row["timesteps"] = int(group["timesteps"].min())
        for column in (*METRICS, *RUN_STATISTICS):
            if column in group and group[column].notna().all():
                row[column], row[f"{column}_low"], row[f"{column}_high"] = interval(group[column].to_numpy(), statistic)
        rows.append(row)
    return pd.DataFrame(rows)


# Metrics compared against the baseline noise: (column, how). "difference": noise − baseline; "relative":
# noise / baseline − 1 (energies: "−30%" is 30% less energy than the baseline).
COMPARED = (("return", "difference"), ("success", "difference"), ("effort", "relative"), ("act_sq", "relative"))


def comparison_table(finals: pd.DataFrame, baseline: str = "isotropic", statistic: str = "mean") -> pd.DataFrame:
    """Each noise against ``baseline`` per env × algo, from the runs' final evaluations (one row per run): the
    difference of the statistic for return and success, the relative change for the energies, each with a 95%
    percentile-bootstrap interval resampling the seeds of both groups independently."""
    stat = _statistic(statistic)
    how_stat = {
        "difference": lambda a, b, axis=-1: stat(a, axis) - stat(b, axis),
        "relative": lambda a, b, axis=-1: stat(a, axis) / stat(b, axis) - 1.0,
    }
    rows = []
    for (env, algo), group in finals.groupby(["env", "algo"], sort=True):
        base = group[group["noise"] == baseline]
        if base.empty:
            continue
        for noise, other in group[group["noise"] != baseline].groupby("noise", sort=True):
            row: dict[str, object] = {"env": env, "algo": algo, "noise": noise, "baseline": baseline}
            row["seeds"] = f"{len(other)} vs {len(base)}"
            for column, how in COMPARED:
                if column not in group or group[column].isna().any():
                    continue
                a, b = other[column].to_numpy(np.float64), base[column].to_numpy(np.float64)
                if how == "relative" and stat(b) == 0:
                    continue
                f = how_stat[how]
                row[column] = float(f(a, b))
                row[f"{column}_low"] = row[f"{column}_high"] = np.nan
                if min(len(a), len(b)) >= 2 and not (np.all(a == a[0]) and np.all(b == b[0])):
                    ci = scipy.stats.bootstrap(
                        (a, b), f, n_resamples=2000, method="percentile", random_state=0, vectorized=True
                    ).confidence_interval
                    row[f"{column}_low"], row[f"{column}_high"] = float(ci.low), float(ci.high)
            rows.append(row)
    return pd.DataFrame(rows)


def markdown_comparison(comparison: pd.DataFrame, statistic: str = "mean") -> str:
    """The comparison table as markdown: return and success as differences, energies as relative changes."""
    columns = [(c, how) for c, how in COMPARED if c in comparison]
    names = {"difference": "− baseline", "relative": "change vs baseline"}
    header = ["env", "algo", "noise", "vs", "seeds"] + [f"{c} {names[how]} ({statistic}, 95% CI)" for c, how in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in comparison.iterrows():
        cells = [row["env"], row["algo"], row["noise"], row["baseline"], row["seeds"]]
        for c, how in columns:
            value = row.get(c)
            if value is None or pd.isna(value):
                cells.append("")
                continue
            low, high = row[f"{c}_low"], row[f"{c}_high"]
            if how == "relative":
                ci = "" if pd.isna(low) else f" [{100 * low:+.0f}%, {100 * high:+.0f}%]"
                cells.append(f"{100 * value:+.0f}%{ci}")
            else:
                digits = 2 if c == "return" else 3
                ci = "" if pd.isna(low) else f" [{low:+.{digits}f}, {high:+.{digits}f}]"
                cells.append(f"{value:+.{digits}f}{ci}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _estimate_cell(row: pd.Series, column: str) -> str:
    """``estimate [low, high]`` of ``column`` in a table row (return to 2 decimals, the rest to 4); the estimate alone
    without an interval, and an empty cell without a value."""
    value = row.get(column)
    if value is None or pd.isna(value):
        return ""
    digits = 2 if column == "return" else 4
    low, high = row[f"{column}_low"], row[f"{column}_high"]
    return f"{value:.{digits}f}" + ("" if pd.isna(low) else f" [{low:.{digits}f}, {high:.{digits}f}]")


def markdown_table(table: pd.DataFrame, statistic: str = "mean") -> str:
    """The final-value table as markdown: ``estimate [low, high]`` per metric, the number of seeds."""
    columns = [c for c in (*METRICS, *RUN_STATISTICS) if c in table]
    header = ["env", "algo", "noise", "seeds", "steps", *[f"{c} ({statistic}, 95% CI)" for c in columns]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        cells = [row["env"], row["algo"], row["noise"], str(row["seeds"]), f"{row['timesteps']:,}"]
        cells += [_estimate_cell(row, c) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_report(evaluations: pd.DataFrame, table: pd.DataFrame, out: Path, statistic: str = "mean") -> list[Path]:
    """Per env: one figure of the evaluation metrics vs env steps, a line per algo × noise with its 95% band
    across seeds (at the steps every seed evaluated), and a bar chart of the final values with intervals."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    # One colour per algo × noise, the same in every panel and every env's figure.
    keys = sorted(set(zip(evaluations["algo"], evaluations["noise"], strict=True)))
    colours = {key: f"C{i % 10}" for i, key in enumerate(keys)}
    for env, per_env in evaluations.groupby("env"):
        columns = [c for c in METRICS if c in per_env and per_env[c].notna().any()]
        fig = Figure(figsize=(4.6 * len(columns), 7.2))
        axes = fig.subplots(2, len(columns), squeeze=False)
        for (algo, noise), group in per_env.groupby(["algo", "noise"]):
            label = f"{algo} / {noise}"
            n_runs = group["run"].nunique()
            counts = group.groupby("timesteps")["run"].nunique()
            steps = counts.index[counts == n_runs].to_numpy()  # evaluated by every seed
            for ax, column in zip(axes[0], columns, strict=True):
                points = [interval(group.loc[group["timesteps"] == s, column].to_numpy(), statistic) for s in steps]
                if not points:
                    continue
                estimate, low, high = (np.array(p) for p in zip(*points, strict=True))
                colour = colours[(algo, noise)]
                ax.plot(steps, estimate, marker="o", markersize=3, color=colour, label=f"{label} ({n_runs} seeds)")
                ax.fill_between(steps, low, high, color=colour, alpha=0.2)
        for ax, column in zip(axes[0], columns, strict=True):
            ax.set(xlabel="environment steps", ylabel=METRICS[column][1], title=f"{METRICS[column][1]} ({statistic})")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        rows = table[table["env"] == env].reset_index(drop=True)
        for ax, column in zip(axes[1], columns, strict=True):
            if column not in rows:
                ax.axis("off")
                continue
            labels = [f"{a}\n{n}" for a, n in zip(rows["algo"], rows["noise"], strict=True)]
            estimate = rows[column].to_numpy(dtype=np.float64)
            err = np.abs(np.stack([estimate - rows[f"{column}_low"], rows[f"{column}_high"] - estimate]))
            bar_colours = [colours[key] for key in zip(rows["algo"], rows["noise"], strict=True)]
            ax.bar(labels, estimate, yerr=np.nan_to_num(err.astype(np.float64)), capsize=4, color=bar_colours)
            ax.set(ylabel=METRICS[column][1], title=f"final {METRICS[column][1]} (95% CI)")
            ax.grid(alpha=0.3, axis="y")
        fig.suptitle(f"{env}: evaluation across seeds")
        fig.tight_layout()
        path = out / f"{str(env).replace(' ', '_')}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written


# Energy at matched performance: success-rate bins (closed on the left) for the energy table.
SUCCESS_BINS = (0.0, 0.05, 0.35, 0.65, 0.95, 1.0 + 1e-9)
SUCCESS_BIN_LABELS = ("0", "0.05-0.35", "0.35-0.65", "0.65-0.95", "0.95-1")


def _energy_column(evaluations: pd.DataFrame) -> str | None:
    """The energy a task logs: muscle effort, else the squared action (tasks without muscles, e.g. Ant)."""
    for column in ("effort", "action_sq"):
        if column in evaluations and evaluations[column].notna().any():
            return column
    return None


def energy_by_success(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Energy at matched success: per env × algo × noise and success-rate bin, the mean energy over every
    evaluation (every seed, every step count) whose success rate falls in the bin, with how many evaluations and
    runs that is. Evaluations of one run are not independent: the counts say how much data each cell rests on."""
    energy = _energy_column(evaluations)
    if energy is None or "success" not in evaluations:
        return pd.DataFrame()
    rated = evaluations.dropna(subset=["success", energy])
    bins = pd.cut(rated["success"], SUCCESS_BINS, right=False, labels=SUCCESS_BIN_LABELS)
    rows = []
    for (env, algo, noise, bin_label), group in rated.groupby(["env", "algo", "noise", bins], observed=True):
        rows.append(
            {
                "env": env,
                "algo": algo,
                "noise": noise,
                "success_bin": bin_label,
                "energy": energy,
                "mean": float(group[energy].mean()),
                "evaluations": len(group),
                "runs": group["run"].nunique(),
            }
        )
    return pd.DataFrame(rows)


def markdown_energy(table: pd.DataFrame) -> str:
    """The energy-by-success table as markdown: a row per env × algo × noise, a column per success bin."""
    if table.empty:
        return ""
    label = ENERGY_LABELS[METRICS[table["energy"].iloc[0]][0]]
    header = ["env", "algo", "noise", *(f"success {b}" for b in SUCCESS_BIN_LABELS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for (env, algo, noise), group in table.groupby(["env", "algo", "noise"], sort=True):
        cells = {
            row.success_bin: f"{row.mean:.4f} ({row.evaluations} evals, {row.runs} runs)" for row in group.itertuples()
        }
        lines.append("| " + " | ".join([env, algo, noise, *(cells.get(b, "") for b in SUCCESS_BIN_LABELS)]) + " |")
    return f"Mean {label} by success rate (every evaluation of every run):\n\n" + "\n".join(lines) + "\n"


def plot_energy_vs_performance(evaluations: pd.DataFrame, out: Path) -> list[Path]:
    """Per env: each evaluation's energy against its success rate and against its return (a point per
    evaluation of every run, a colour per algo × noise), with each group's mean energy in bins of the x axis
    (the success bins; five quantile bins of the pooled returns), so policies can be compared at equal
    performance rather than at equal step counts."""
    energy = _energy_column(evaluations)
    if energy is None:
        return []
    out.mkdir(parents=True, exist_ok=True)
    keys = sorted(set(zip(evaluations["algo"], evaluations["noise"], strict=True)))
    colours = {key: f"C{i % 10}" for i, key in enumerate(keys)}
    written = []
    for env, per_env in evaluations.dropna(subset=[energy]).groupby("env"):
        xs = [c for c in ("success", "return") if c in per_env and per_env[c].notna().any()]
        fig = Figure(figsize=(5.2 * len(xs), 4.4))
        axes = fig.subplots(1, len(xs), squeeze=False)[0]
        for ax, x in zip(axes, xs, strict=True):
            if x == "success":
                edges = np.asarray(SUCCESS_BINS)
            else:
                edges = np.unique(np.quantile(per_env[x], np.linspace(0, 1, 6)))
                edges[-1] += 1e-9
            for (algo, noise), group in per_env.groupby(["algo", "noise"]):
                colour = colours[(algo, noise)]
                ax.scatter(group[x], group[energy], s=10, alpha=0.35, color=colour)
                which = np.digitize(group[x], edges) - 1
                centres, means = [], []
                for b in sorted(set(which)):
                    inside = group[which == b]
                    centres.append(float(inside[x].mean()))
                    means.append(float(inside[energy].mean()))
                ax.plot(
                    centres, means, marker="o", color=colour, label=f"{algo} / {noise} ({group['run'].nunique()} runs)"
                )
            ax.set(xlabel=METRICS[x][1], ylabel=ENERGY_LABELS[METRICS[energy][0]], title=f"energy vs {METRICS[x][1]}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{env}: energy at matched performance (points: evaluations; lines: binned means)")
        fig.tight_layout()
        path = out / f"{str(env).replace(' ', '_')}_energy_vs_performance.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written


def window_table(evaluations: pd.DataFrame, windows: int, statistic: str = "mean") -> pd.DataFrame:
    """The learning curves in ``windows`` spans of training: per env × algo × noise and span, each run's mean of
    each metric over its evaluations in the span, then the statistic across seeds with a 95% interval, and how many
    of the span's evaluations solved at least one episode.

    Spans split each env's steps into equal parts ending at its last evaluation (``windows=2``: the first and the
    second half of training). A trend read from window means rests on several evaluations per seed, where one
    evaluation of a few episodes swings with a single solved episode.
    """
    rows = []
    for env, by_env in evaluations.groupby("env", sort=True):
        bounds = np.linspace(0, by_env["timesteps"].max(), windows + 1)
        # Span i holds the evaluations at steps in (bounds[i], bounds[i + 1]]; an evaluation at step 0 joins the first.
        span = np.clip(np.searchsorted(bounds, by_env["timesteps"].to_numpy(), side="left") - 1, 0, windows - 1)
        for (algo, noise, index), group in by_env.groupby(["algo", "noise", span], sort=True):
            row: dict[str, object] = {"env": env, "algo": algo, "noise": noise, "window": int(index) + 1}
            row["first_step"], row["last_step"] = int(group["timesteps"].min()), int(group["timesteps"].max())
            row["seeds"], row["evaluations"] = group["run"].nunique(), len(group)
            per_run = group.groupby("run", sort=True)
            for column in METRICS:
                if column in group and group[column].notna().all():
                    values = per_run[column].mean().to_numpy()
                    row[column], row[f"{column}_low"], row[f"{column}_high"] = interval(values, statistic)
            if "success" in group and group["success"].notna().all():
                row["with_success"] = int((group["success"] > 0).sum())
            rows.append(row)
    return pd.DataFrame(rows)


def markdown_windows(table: pd.DataFrame, statistic: str = "mean") -> str:
    """The window table as markdown: a row per env × algo × noise × span, ``estimate [low, high]`` per metric."""
    columns = [c for c in METRICS if c in table]
    header = ["env", "algo", "noise", "steps", "seeds", *[f"{c} ({statistic}, 95% CI)" for c in columns]]
    if "with_success" in table:
        header.append("evaluations with success > 0")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        steps = f"{row['first_step']:,}-{row['last_step']:,}"
        cells = [row["env"], row["algo"], row["noise"], steps, str(row["seeds"])]
        cells += [_estimate_cell(row, c) for c in columns]
        if "with_success" in table:
            cells.append("" if pd.isna(row["with_success"]) else f"{int(row['with_success'])} of {row['evaluations']}")
        lines.append("| " + " | ".join(cells) + " |")
    return (
        "Learning-curve windows (each run's mean over its evaluations in the span of steps, then across seeds):\n\n"
        + "\n".join(lines)
        + "\n"
    )


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


def write_report(
    paths: list[Path],
    out: Path,
    statistic: str = "mean",
    baseline: str = "isotropic",
    unfinished: bool = False,
    baseline_required: bool = False,
    windows: int = 0,
) -> list[Path]:
    """Find the run folders under ``paths``; write per-env figures, ``final.md``, ``final.csv``,
    ``comparison.csv`` and ``evaluations.csv`` into ``out``.

    Only finished runs enter the figures and tables (a run stopped by an error, or still running, would be
    compared at fewer steps); the others are listed in ``final.md`` with their status and last evaluation.
    ``unfinished=True`` includes them at their last evaluation (e.g. to look at a sweep in progress). Run folders
    that cannot be read are skipped and listed.

    :param windows: Also write ``windows.csv`` and a table in ``final.md``: the curves' means over this many equal
        spans of training (``window_table``); 0 for none, a negative number raises ConfigError before anything is
        read or written.
    :param baseline_required: Raise ConfigError (naming the noises present) when no reported run has the
        ``baseline`` noise; otherwise ``final.md`` says that there is no comparison, and why.
    :raises FileNotFoundError: when no run can be reported.
    """
    if windows < 0:
        raise ConfigError(f"--windows {windows}: the number of spans must be 0 (none) or a positive integer")
    runs = find_runs(paths)
    if not runs:
        raise FileNotFoundError(f"No run folders (config.yml + command.txt) under {', '.join(map(str, paths))}")
    evaluations, unreadable = read_runs(runs)
    if evaluations.empty:
        raise FileNotFoundError(
            f"No readable run folder under {', '.join(map(str, paths))}: "
            + "; ".join(f"{run}: {why}" for run, why in unreadable.items())
        )
    evaluations = label_settings(label_tasks(evaluations))
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
    out.mkdir(parents=True, exist_ok=True)
    written = plot_report(evaluations, table, out, statistic)
    written += plot_energy_vs_performance(evaluations, out)
    energy = energy_by_success(evaluations)
    text = markdown_table(table, statistic)
    if not comparison.empty:
        text += f"\nAgainst {baseline} noise (final evaluations; intervals resample both groups' seeds):\n\n"
        text += markdown_comparison(comparison, statistic)
    elif baseline not in noises and len(noises) > 1:
        text += f"\nNo comparison: no run has the baseline noise {baseline!r} (present: {', '.join(noises)}).\n"
    if not energy.empty:
        text += "\n" + markdown_energy(energy)
    spans = window_table(evaluations, windows, statistic) if windows else pd.DataFrame()
    if not spans.empty:
        text += "\n" + markdown_windows(spans, statistic)
    if not left_out.empty:
        text += f"\nLeft out (not {'evaluated' if unfinished else 'finished'}):\n\n" + "".join(
            f"- {Path(row.run).name}: "
            + (f"last evaluation at {row.timesteps:,} steps" if row.timesteps else "no evaluation")
            + f"; {row.status}\n"
            for row in left_out.itertuples()
        )
    if unreadable:
        text += "\nSkipped (cannot be read):\n\n" + "".join(f"- {run}: {why}\n" for run, why in unreadable.items())
    (out / "final.md").write_text(text)
    table.to_csv(out / "final.csv", index=False)
    comparison.to_csv(out / "comparison.csv", index=False)
    evaluations.to_csv(out / "evaluations.csv", index=False)
    tables = [out / "final.md", out / "final.csv", out / "comparison.csv", out / "evaluations.csv"]
    if not energy.empty:
        energy.to_csv(out / "energy_by_success.csv", index=False)
        tables.append(out / "energy_by_success.csv")
    if not spans.empty:
        spans.to_csv(out / "windows.csv", index=False)
        tables.append(out / "windows.csv")
    return [*written, *tables]
