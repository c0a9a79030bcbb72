"""Figures of runs and studies, drawn through matplotlib's object API (``matplotlib.figure.Figure``) straight to
files: no pyplot, no process-wide backend, so importing or drawing changes no state of the process.

One run's learning curve and energy; per task, the metrics of many runs against env steps with 95% bands across
seeds (the intervals of the report's tables, ``stats.interval``) and the final values as bars; energy at matched
performance; a tuning's optimisation history and parameter importances. A report's figures carry no date or version
in their metadata, so the same data give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from lattice.experiments.stats import ENERGY_LABELS, INTERVALS, METRICS, SUCCESS_BINS, energy_column, interval


def plot_run_curves(
    evaluations: dict[str, np.ndarray], progress: pd.DataFrame, title: str, curve: Path, energy: Path
) -> list[Path]:
    """One run's learning curve (evaluations: mean ± sd over episodes; training: SB3's running mean), and its
    energy per logged energy key when it logged any.

    :param evaluations: The arrays of the run's ``evaluations.npz`` (empty: none yet).
    :param progress: The rows of its ``progress.csv`` with training statistics (``report.training_progress``).
    :param title: The run's name, in the titles.
    :param curve: Where the learning curve goes.
    :param energy: Where the energy figure goes (not written without energy).
    :return: The files written.
    """
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
    fig.savefig(curve, dpi=120)
    written.append(curve)

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
        fig.savefig(energy, dpi=120)
        written.append(energy)
    return written


def save_report_figure(fig: Figure, path: Path) -> None:
    """Write a report's figure as PNG without matplotlib's ``Software`` entry (its version), so that the same
    figure gives the same bytes wherever and whenever it is drawn (Agg writes no date into a PNG)."""
    fig.savefig(path, dpi=110, metadata={"Software": None})


def plot_report(
    evaluations: pd.DataFrame,
    table: pd.DataFrame,
    out: Path,
    statistic: str = "mean",
    floors: pd.DataFrame | None = None,
) -> list[Path]:
    """Per env: one figure of the evaluation metrics vs env steps, a line per algo × noise (the statistic across
    seeds, at the steps every seed evaluated) with its 95% band, and a bar chart of the final values (``table``,
    ``stats.final_table``) with their intervals. Bands and bars are the tables' intervals (``stats.interval``):
    Student's t-interval of the mean, or the stratified bootstrap interval of the IQM; the captions say which.

    :param floors: The chance baselines (``final_table`` of ``chance.chance_baselines``): a dashed grey line
        per policy in each curve panel, at its statistic."""
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
                at = [group.loc[group["timesteps"] == s, column].to_numpy() for s in steps]
                points = [interval(values, statistic, column) for values in at]
                if not points:
                    continue
                estimate, low, high = (np.array(p) for p in zip(*points, strict=True))
                colour = colours[(algo, noise)]
                ax.plot(steps, estimate, marker="o", markersize=3, color=colour, label=f"{label} ({n_runs} seeds)")
                ax.fill_between(steps, low, high, color=colour, alpha=0.2)
        chance = floors[floors["env"] == env] if floors is not None and not floors.empty else pd.DataFrame()
        for ax, column in zip(axes[0], columns, strict=True):
            for (_, floor), style in zip(chance.iterrows(), ("--", ":"), strict=False):
                if column in floor and pd.notna(floor[column]):
                    ax.axhline(floor[column], color="0.4", linestyle=style, linewidth=1, label=f"{floor['noise']}")
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
            ax.set(ylabel=METRICS[column][1], title=f"final {METRICS[column][1]} ({statistic}, 95% CI)")
            ax.grid(alpha=0.3, axis="y")
        fig.suptitle(f"{env}: evaluation across seeds ({statistic}; bands and bars: {INTERVALS[statistic]})")
        fig.tight_layout()
        path = out / f"{str(env).replace(' ', '_')}.png"
        save_report_figure(fig, path)
        written.append(path)
    return written


def plot_energy_vs_performance(evaluations: pd.DataFrame, out: Path) -> list[Path]:
    """Per env: each evaluation's energy against its success rate and against its return (a point per
    evaluation of every run, a colour per algo × noise), with each group's mean energy in bins of the x axis
    (the success bins; five quantile bins of the pooled returns), so policies can be compared at equal
    performance rather than at equal step counts."""
    energy = energy_column(evaluations)
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
        save_report_figure(fig, path)
        written.append(path)
    return written


def plot_history(table: pd.DataFrame, path: Path) -> None:
    """A tuning's objective per trial (dots; pruned: hollow) and the best so far (line), one colour per noise.

    :param table: The tuning's trials (``studies.trials_table``: noise, trial, state, objective).
    :param path: Where the figure goes.
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for i, (noise, rows) in enumerate(table.groupby("noise", sort=False)):
        color = f"C{i}"
        rows = rows.sort_values("trial")
        complete = rows[rows["state"] == "complete"]
        pruned = rows[rows["state"] == "pruned"]
        ax.scatter(complete["trial"], complete["objective"], color=color, s=18)
        ax.scatter(pruned["trial"], pruned["objective"], facecolors="none", edgecolors=color, s=18)
        best = complete.set_index("trial")["objective"].cummax().reindex(rows["trial"]).ffill()
        ax.plot(rows["trial"], best, color=color, label=noise)
    ax.set(xlabel="trial", ylabel="objective (mean eval return)", title="Optimisation history (hollow: pruned)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_importance(importances: dict[str, dict[str, float]], path: Path) -> None:
    """Parameter importances per noise, a bar per parameter (``policy_kwargs.`` left out of the names); a note
    instead when no noise has any.

    :param importances: Noise → parameter → importance (``studies.importances``: Optuna's fANOVA).
    :param path: Where the figure goes.
    """
    panels = max(1, len(importances))
    fig = Figure(figsize=(3.2 * panels, 3))
    axes = fig.subplots(1, panels, squeeze=False)
    for ax, (noise, values) in zip(axes[0], importances.items(), strict=False):
        keys = list(values)[::-1]
        ax.barh([k.removeprefix("policy_kwargs.") for k in keys], [values[k] for k in keys], color="C0")
        ax.set(title=noise, xlabel="importance", xlim=(0, 1))
    if not importances:
        axes[0][0].text(0.5, 0.5, "fewer than 2 complete trials", ha="center", va="center")
        axes[0][0].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
