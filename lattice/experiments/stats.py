"""Statistics of reports over runs (seeds × noises × tasks): the metrics, the statistic over seeds with a 95%
interval that holds at 3–5 seeds, and the tables of values they give: final values, each noise against a baseline,
energy at matched success, learning-curve windows. Markdown: ``tables``; figures: ``plots``; reading the runs:
``report``.

Two statistics, each with its intervals (Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice", https://arxiv.org/abs/2108.13264, and its library ``rliable``):

- ``mean``: the mean over seeds with Student's t-interval; against the baseline, Welch's t-interval and p-value for
  the difference of means, and Fieller's interval for the ratio of means (energies' relative change).
- ``iqm``: the interquartile mean with rliable's stratified bootstrap interval; against the baseline, the same
  bootstrap of the difference and of the ratio of IQMs.

Both give rliable's probability of improvement over the baseline with its stratified bootstrap interval. The
bootstrap is rliable's algorithm, written here over numpy arrays (``bootstrap_interval``): ``rliable.library`` draws
from numpy's global random state whatever ``random_state`` it is given, needs ``arch<8``, which does not import
under pandas 3, and loops in Python over the resamples.
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

# Metrics whose probability of improvement over the baseline is given: those where higher is better. Lower energy
# is better only between policies that solve the task equally well (``energy_by_success``).
IMPROVED = ("return", "success")

# Metrics whose value in every seed stands beside the aggregate (digits of each value), so that a reader sees the
# data an interval rests on.
PER_SEED = {"return": 2, "success": 3}

# The values each metric can take: an interval is cut to them (the true mean lies there, so cutting keeps the
# coverage; a t-interval of 5 success rates near 1 otherwise reaches past 1).
RANGES = {
    "success": (0.0, 1.0),
    "effort": (0.0, np.inf),
    "act_sq": (0.0, np.inf),
    "action_sq": (0.0, np.inf),
    "approx_kl": (0.0, np.inf),
    "clip_fraction": (0.0, 1.0),
    DIVERGED: (0.0, 1.0),
}

# Energy at matched performance: success-rate bins (closed on the left) for the energy table.
SUCCESS_BINS = (0.0, 0.05, 0.35, 0.65, 0.95, 1.0 + 1e-9)
SUCCESS_BIN_LABELS = ("0", "0.05-0.35", "0.35-0.65", "0.65-0.95", "0.95-1")
START = "step 0"  # the energy table's column of the untrained policies (their evaluation at step 0)

CONFIDENCE = 0.95
RESAMPLES = 2000  # bootstrap resamples per interval
BOOTSTRAP_SEED = 0  # one fixed seed per interval: the same data give the same report, whatever else it holds

# What each statistic's intervals are, for the tables' headers and the figures' captions.
INTERVALS = {"mean": "Student-t 95% CI", "iqm": "stratified-bootstrap 95% CI"}

Estimate = tuple[float, float, float]  # (estimate, low, high)


def iqm(values: np.ndarray, axis: int = -1) -> Any:
    """The interquartile mean along ``axis``: the mean of what is left after cutting ``int(0.25 n)`` values from
    each end (``scipy.stats.trim_mean``, as ``rliable.metrics.aggregate_iqm`` does over one task's runs). With 3
    seeds nothing is cut (the mean); with 5, the lowest and highest. Along an axis, so that one call evaluates every
    bootstrap resample."""
    return scipy.stats.trim_mean(values, 0.25, axis=axis)


def statistic_function(statistic: str) -> Callable[..., Any]:
    """The statistic over seeds as a function of (values, axis)."""
    if statistic not in INTERVALS:
        raise ValueError(f"Unknown statistic {statistic!r}; choose mean or iqm")
    if statistic == "iqm":
        return iqm
    return lambda x, axis=-1: np.mean(x, axis=axis)


def t_interval(values: np.ndarray) -> Estimate:
    """The mean and its Student-t 95% interval, mean ± t₀.₉₇₅,ₙ₋₁ · s / √n (s: the standard deviation with n − 1).

    At 3 seeds t₀.₉₇₅,₂ = 4.30: the interval is about 2.5 times the seeds' sample standard deviation wide on either
    side, where a bootstrap over 3 seeds never leaves their range; its coverage is 95% for normal values at any n.

    :param values: One value per seed.
    :return: (mean, low, high); the interval is NaN with fewer than 2 seeds.
    """
    values = np.asarray(values, dtype=np.float64)
    n, mean = len(values), float(np.mean(values))
    if n < 2:
        return mean, np.nan, np.nan
    half = scipy.stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1) * np.std(values, ddof=1) / np.sqrt(n)
    return mean, float(mean - half), float(mean + half)


def welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    """Welch–Satterthwaite degrees of freedom of a difference of two independent means, from each mean's variance
    (s² / n) and its number of values: (v_a + v_b)² / (v_a² / (n_a − 1) + v_b² / (n_b − 1))."""
    return (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))


def welch_difference(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """mean(a) − mean(b) with Welch's 95% t-interval and the two-sided p-value of Welch's test of equal means
    (``scipy.stats.ttest_ind(a, b, equal_var=False)``): the two groups' variances may differ, as two noises'
    returns do.

    :return: (difference, low, high, p); NaN interval and p with fewer than 2 values in a group; with no spread in
        either group, the difference itself as the interval and a NaN p.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    difference = float(np.mean(a) - np.mean(b))
    if min(len(a), len(b)) < 2:
        return difference, np.nan, np.nan, np.nan
    var_a, var_b = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if var_a + var_b == 0:
        return difference, difference, difference, np.nan
    df, se = welch_df(var_a, len(a), var_b, len(b)), np.sqrt(var_a + var_b)
    half = scipy.stats.t.ppf(0.5 + CONFIDENCE / 2, df) * se
    p = 2 * scipy.stats.t.sf(abs(difference) / se, df)
    return difference, float(difference - half), float(difference + half), float(p)


def fieller_ratio(a: np.ndarray, b: np.ndarray) -> Estimate:
    """mean(a) / mean(b) with Fieller's 95% interval, for two independent groups with their own variances.

    Fieller's theorem rather than the delta method on log(mean(a) / mean(b)): the pivot mean(a) − R·mean(b) is a
    normal variable for the true ratio R, so the interval, {R : (ā − R b̄)² ≤ t² (v_a + R² v_b)} with v = s² / n,
    needs no linearisation, whose error grows with the baseline's relative spread; and where the baseline mean is
    not told apart from 0 (g = t² v_b / b̄² ≥ 1) the set is unbounded, which it reports instead of a finite interval
    that would be wrong. t is Student's with the Welch–Satterthwaite degrees of freedom of ā − R b̄ at R = ā / b̄.
    Its coverage at 3 and 5 seeds is checked by simulation in the tests.

    :return: (ratio, low, high); NaN ends with fewer than 2 values in a group or with an unbounded set; with no
        spread in either group, the ratio itself as the interval.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
    ratio = mean_a / mean_b
    if min(len(a), len(b)) < 2:
        return ratio, np.nan, np.nan
    var_a, var_b = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    if var_a + var_b == 0:
        return ratio, ratio, ratio
    t = scipy.stats.t.ppf(0.5 + CONFIDENCE / 2, welch_df(var_a, len(a), ratio**2 * var_b, len(b)))
    g = t**2 * var_b / mean_b**2
    if g >= 1:
        return ratio, np.nan, np.nan
    # The roots of (b̄² − t² v_b) R² − 2 ā b̄ R + (ā² − t² v_a) = 0, divided through by b̄².
    half = t / abs(mean_b) * np.sqrt(var_a + ratio**2 * var_b - g * var_a)
    return ratio, float((ratio - half) / (1 - g)), float((ratio + half) / (1 - g))


def probability_of_improvement(x: np.ndarray, y: np.ndarray) -> Any:
    """rliable's probability of improvement of X over Y on one task (``rliable.metrics.probability_of_improvement``):
    P(X > Y) + ½ P(X = Y) over every pair of a run of X and a run of Y, the Mann–Whitney U statistic over
    n_x · n_y. 0.5: neither is better; 1: every run of X beats every run of Y.

    :param x: Runs along the last axis; any leading axes (bootstrap resamples) are kept.
    :param y: The same for Y, with the same leading axes.
    """
    pairs = np.asarray(x)[..., :, None] - np.asarray(y)[..., None, :]
    return np.mean(pairs > 0, axis=(-2, -1)) + 0.5 * np.mean(pairs == 0, axis=(-2, -1))


def bootstrap_interval(statistic: Callable[..., Any], *groups: np.ndarray) -> Estimate:
    """``statistic(*groups)`` and its 95% interval from rliable's stratified bootstrap (``rliable.library``'s
    ``StratifiedIndependentBootstrap`` with its default ``percentile`` method): ``RESAMPLES`` times, each group's
    runs are drawn with replacement, independently of the other groups' (with one task, the task is the one
    stratum); the interval is the 2.5th and 97.5th percentiles of the statistic over the resamples. The seed is
    fixed (``BOOTSTRAP_SEED``), so the same data always give the same interval.

    Few seeds make it narrow: a resample of 3 seeds never leaves their range, so at 3–5 seeds its coverage is well
    under 95% (the tests measure it); the ``mean`` statistic's t-intervals are the ones that hold there.

    :param statistic: A function of the groups' runs along their last axis, vectorized over leading axes (``iqm``,
        ``probability_of_improvement``).
    :param groups: Each group's values, one per run.
    :return: (estimate, low, high); the interval is NaN with fewer than 2 runs in a group.
    """
    groups = tuple(np.asarray(g, dtype=np.float64) for g in groups)
    estimate = float(statistic(*groups))
    if min(len(g) for g in groups) < 2:
        return estimate, np.nan, np.nan
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resamples = [g[rng.integers(0, len(g), size=(RESAMPLES, len(g)))] for g in groups]
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.percentile(statistic(*resamples), [tail, 100 - tail])
    return estimate, float(low), float(high)


def interval(values: np.ndarray, statistic: str = "mean", metric: str | None = None) -> Estimate:
    """The statistic over seeds and its 95% interval: Student's t-interval of the mean (``t_interval``), or the
    stratified bootstrap interval of the IQM (``bootstrap_interval``).

    :param values: One value per seed.
    :param statistic: ``mean`` or ``iqm`` (interquartile mean, rliable's aggregate).
    :param metric: The metric's column: the interval is cut to the values it can take (``RANGES``).
    :return: (estimate, low, high); the interval is NaN with fewer than 2 seeds.
    """
    statistic_function(statistic)  # an unknown statistic raises
    estimate, low, high = bootstrap_interval(iqm, values) if statistic == "iqm" else t_interval(values)
    lowest, highest = RANGES.get(metric or "", (-np.inf, np.inf))
    return estimate, float(np.clip(low, lowest, highest)), float(np.clip(high, lowest, highest))


def per_seed(values: pd.Series, digits: int) -> str:
    """Each seed's value, in seed order, as text (``"1.25 3.50 2.00"``)."""
    return " ".join(f"{value:.{digits}f}" for value in values)


def last_evaluations(evaluations: pd.DataFrame) -> pd.DataFrame:
    """Each run's last evaluation (one row per run), in seed order (then by run folder): the per-seed values read
    in that order, and a group's numbers do not depend on which other runs are in the report or how they arrive."""
    order = [c for c in ("seed", "run") if c in evaluations]
    return evaluations.sort_values(["run", "timesteps"]).groupby("run").tail(1).sort_values(order, kind="stable")


def final_table(finals: pd.DataFrame, statistic: str = "mean") -> pd.DataFrame:
    """Per env × algo × noise: each metric at the runs' last evaluations (``last_evaluations``), and each run's
    own statistics (``RUN_STATISTICS``), across seeds, with 95% intervals (``interval``); the seeds and, for
    ``PER_SEED``, each seed's value."""
    rows = []
    for (env, algo, noise), group in finals.groupby(["env", "algo", "noise"], sort=True):
        row: dict[str, object] = {"env": env, "algo": algo, "noise": noise, "seeds": len(group)}
        row["timesteps"] = int(group["timesteps"].min())
        if "seed" in group:
            row["seed_ids"] = " ".join(str(seed) for seed in group["seed"])
        for column in (*METRICS, *RUN_STATISTICS):
            if column in group and group[column].notna().all():
                values = group[column].to_numpy()
                row[column], row[f"{column}_low"], row[f"{column}_high"] = interval(values, statistic, column)
                if column in PER_SEED:
                    row[f"{column}_per_seed"] = per_seed(group[column], PER_SEED[column])
        rows.append(row)
    return pd.DataFrame(rows)


def compare(a: np.ndarray, b: np.ndarray, how: str, statistic: str) -> dict[str, float]:
    """One metric of a noise's runs (``a``) against the baseline's (``b``): the difference or relative change of the
    statistic (``how``, as in ``COMPARED``) with its 95% interval; with the mean, also Welch's p-value of equal
    means. Keys: the suffixes of ``comparison_table``'s columns (``""``, ``_low``, ``_high``, ``_p``)."""
    if statistic == "mean":
        difference, low, high, p = welch_difference(a, b)
        if how == "relative":
            ratio, low, high = fieller_ratio(a, b)
            # The metrics compared relatively (energies) are not negative: neither is the ratio of their means.
            return {"": ratio - 1.0, "_low": max(low, 0.0) - 1.0, "_high": high - 1.0, "_p": p}
        return {"": difference, "_low": low, "_high": high, "_p": p}
    if how == "relative":
        ratio, low, high = bootstrap_interval(lambda x, y: iqm(x) / iqm(y), a, b)
        return {"": ratio - 1.0, "_low": low - 1.0, "_high": high - 1.0}
    difference, low, high = bootstrap_interval(lambda x, y: iqm(x) - iqm(y), a, b)
    return {"": difference, "_low": low, "_high": high}


def comparison_table(finals: pd.DataFrame, baseline: str = "isotropic", statistic: str = "mean") -> pd.DataFrame:
    """Each noise against ``baseline`` per env × algo, from the runs' final evaluations (one row per run): for each
    of ``COMPARED``, the difference of the statistic (return, success) or its relative change (energies) with a
    95% interval (``compare``: Welch and Fieller for the mean, the stratified bootstrap for the IQM) in columns
    ``<metric>``, ``_low``, ``_high`` (and Welch's p-value, ``_p``, for the mean); for each of ``IMPROVED``, the
    probability of improvement over the baseline with its bootstrap interval (``_poi``, ``_poi_low``,
    ``_poi_high``)."""
    stat = statistic_function(statistic)  # an unknown statistic raises here
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
                row.update({f"{column}{suffix}": v for suffix, v in compare(a, b, how, statistic).items()})
                if column in IMPROVED:
                    estimate = bootstrap_interval(probability_of_improvement, a, b)
                    row[f"{column}_poi"], row[f"{column}_poi_low"], row[f"{column}_poi_high"] = estimate
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
    evaluation (every seed, every step count after 0) whose success rate falls in the bin, with how many evaluations
    and runs that is; and in the bin ``START``, the untrained policies' energy (the evaluations at step 0), so that
    a policy that learned to spend less can be told from one that moved little from the start. Evaluations of one
    run are not independent: the counts say how much data each cell rests on."""
    energy = energy_column(evaluations)
    if energy is None or "success" not in evaluations:
        return pd.DataFrame()
    rated = evaluations.dropna(subset=["success", energy])
    trained = rated["timesteps"] > 0
    labels = pd.cut(rated["success"], SUCCESS_BINS, right=False, labels=SUCCESS_BIN_LABELS).astype(str)
    bins = labels.where(trained, START)
    rows = []
    for (env, algo, noise, bin_label), group in rated.groupby(["env", "algo", "noise", bins]):
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
    each metric over its evaluations in the span, then the statistic across seeds with a 95% interval
    (``interval``) and, for ``PER_SEED``, each seed's mean; and how many of the span's evaluations solved at least
    one episode.

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
            seeds = per_run["seed"].first().sort_values(kind="stable") if "seed" in group else None
            runs = list(per_run.groups) if seeds is None else seeds.index
            if seeds is not None:
                row["seed_ids"] = " ".join(str(seed) for seed in seeds)
            for column in METRICS:
                if column in group and group[column].notna().all():
                    values = per_run[column].mean().loc[runs]  # in seed order
                    estimate = interval(values.to_numpy(), statistic, column)
                    row[column], row[f"{column}_low"], row[f"{column}_high"] = estimate
                    if column in PER_SEED:
                        row[f"{column}_per_seed"] = per_seed(values, PER_SEED[column])
            if "success" in group and group["success"].notna().all():
                row["with_success"] = int((group["success"] > 0).sum())
            rows.append(row)
    return pd.DataFrame(rows)
