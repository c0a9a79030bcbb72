"""Statistics of reports over runs (seeds × noises × tasks): the metrics, the statistic over seeds and its 95%
percentile-bootstrap interval (``scipy.stats.bootstrap``), and the tables of values they give: final values, each
noise against a baseline, energy at matched success, learning-curve windows. Markdown: ``tables``; figures:
``plots``; reading the runs: ``report``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from lattice.envs import ACT_SQ, ACTION_SQ, DIVERGED, EFFORT

ENERGY_LABELS = {
    EFFORT: "effort ‖act‖₂ / n_muscles",
    ACT_SQ: "mean act²",
    ACTION_SQ: "mean a² (action)",
}

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
# simulation diverged in training (``report.diverged_fraction``).
RUN_STATISTICS = (*UPDATE_METRICS, DIVERGED)

# Metrics compared against the baseline noise: (column, how). "difference": noise − baseline; "relative":
# noise / baseline − 1 (energies: "−30%" is 30% less energy than the baseline).
COMPARED = (("return", "difference"), ("success", "difference"), ("effort", "relative"), ("act_sq", "relative"))

# Energy at matched performance: success-rate bins (closed on the left) for the energy table.
SUCCESS_BINS = (0.0, 0.05, 0.35, 0.65, 0.95, 1.0 + 1e-9)
SUCCESS_BIN_LABELS = ("0", "0.05-0.35", "0.35-0.65", "0.65-0.95", "0.95-1")


def statistic_function(statistic: str) -> Callable[..., Any]:
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
    stat = statistic_function(statistic)
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


def comparison_table(finals: pd.DataFrame, baseline: str = "isotropic", statistic: str = "mean") -> pd.DataFrame:
    """Each noise against ``baseline`` per env × algo, from the runs' final evaluations (one row per run): the
    difference of the statistic for return and success, the relative change for the energies, each with a 95%
    percentile-bootstrap interval resampling the seeds of both groups independently."""
    stat = statistic_function(statistic)
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


def energy_column(evaluations: pd.DataFrame) -> str | None:
    """The energy a task logs: muscle effort, else the squared action (tasks without muscles, e.g. Ant)."""
    for column in ("effort", "action_sq"):
        if column in evaluations and evaluations[column].notna().any():
            return column
    return None


def energy_by_success(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Energy at matched success: per env × algo × noise and success-rate bin, the mean energy over every
    evaluation (every seed, every step count) whose success rate falls in the bin, with how many evaluations and
    runs that is. Evaluations of one run are not independent: the counts say how much data each cell rests on."""
    energy = energy_column(evaluations)
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
