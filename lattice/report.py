"""Figures of a run folder: the learning curve and the energy over training, as PNG.

Evaluation points come from ``evaluations.npz`` (deterministic policy, separate env); training points from
``progress.csv`` (SB3's running means over the last 100 training episodes, at exact step counts).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from lattice.envs import ACT_SQ, ACTION_SQ, EFFORT

ENERGY_LABELS = {
    EFFORT: "effort ‖act‖₂ / n_muscles",
    ACT_SQ: "mean act²",
    ACTION_SQ: "mean a² (action)",
}


def training_progress(run_dir: Path) -> pd.DataFrame:
    """Rows of ``progress.csv`` with training statistics, one per step count.

    After a resume the steps restart at the checkpoint; rows of the discarded stretch are dropped, so the curve
    follows the training that produced the final model.
    """
    path = run_dir / "progress.csv"
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    df = pd.read_csv(path)
    if "rollout/ep_rew_mean" not in df or "time/total_timesteps" not in df:
        return pd.DataFrame()
    df = df.dropna(subset=["rollout/ep_rew_mean", "time/total_timesteps"])
    steps = df["time/total_timesteps"].to_numpy()
    # Keep a row only if no later row has a smaller or equal step count (a later, resumed stretch).
    later_min = np.minimum.accumulate(steps[::-1])[::-1]
    keep = np.append(steps[:-1] < later_min[1:], True) if len(steps) else np.array([], dtype=bool)
    return df[keep]


def plot_run(run_dir: Path) -> list[Path]:
    """Write ``learning_curve.png`` and (when energy was logged) ``energy.png`` into ``run_dir``."""
    evaluations = dict(np.load(run_dir / "evaluations.npz")) if (run_dir / "evaluations.npz").exists() else {}
    progress = training_progress(run_dir)
    title = run_dir.name
    written = []

    fig, ax = plt.subplots(figsize=(7, 4.2))
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
    fig.savefig(run_dir / "learning_curve.png", dpi=120)
    plt.close(fig)
    written.append(run_dir / "learning_curve.png")

    keys = [k for k in ENERGY_LABELS if k in evaluations or f"rollout/{k}" in progress]
    if keys:
        fig, axes = plt.subplots(1, len(keys), figsize=(4.5 * len(keys), 3.8), squeeze=False)
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
        fig.savefig(run_dir / "energy.png", dpi=120)
        plt.close(fig)
        written.append(run_dir / "energy.png")
    return written
