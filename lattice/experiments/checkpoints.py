"""Which checkpoint a resume continues from, and what it sets aside.

A checkpoint is a unit: the model, its VecNormalize statistics (where the run normalises) and, off-policy, its
replay buffer, all readable and finite, or it is not a checkpoint (``choose_checkpoint``). A resume continues from
the newest one; the files of newer step counts are set aside under the suffixes below (``CheckpointChoice``), and
what the discarded stretch after the checkpoint produced (evaluations, a best model) is moved aside
(``set_aside_after``), never written over or deleted. Every checkpoint model carries the config it was trained with
(``rundir.CONFIG_ATTRIBUTE``, read by ``trained_config``), so a resume can tell whether ``config.yml`` was edited
since.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lattice.experiments.errors import RunFolderError
from lattice.experiments.rundir import (
    BEST_MODEL,
    BEST_RECORD,
    BEST_VECNORMALIZE,
    CHECKPOINT_KINDS,
    CHECKPOINT_PREFIX,
    CHECKPOINTS,
    CONFIG,
    CONFIG_ATTRIBUTE,
    EVALUATIONS,
    RunDir,
    atomic_savez,
    few,
    link_or_copy,
)
from lattice.experiments.zoo import remove_zoo_view

# Suffixes of the files of a checkpoint that a resume set aside (kept for inspection, no longer a checkpoint), by why.
DAMAGED = ".damaged"  # one of its files cannot be read
INCOMPLETE = ".incomplete"  # a file the run needs (VecNormalize statistics, replay buffer) is missing
NONFINITE = ".nonfinite"  # its weights or normalisation statistics hold NaN or inf


def damage(path: Path) -> str | None:
    """Why a saved file cannot be read, or None if it can: a model ``.zip`` must pass its CRC checks and hold SB3's
    JSON ``data`` and the policy's weights; a ``.pkl`` must be a whole pickle (read opcode by opcode to its end,
    without building the objects, which for a replay buffer would take its size in memory)."""
    try:
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                if bad is not None:
                    return f"{bad} fails its CRC check"
                json.loads(archive.read("data"))
                if "policy.pth" not in archive.namelist():
                    return "no policy.pth in it"
        else:
            with path.open("rb") as f:
                for _ in pickletools.genops(f):
                    pass
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, EOFError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def non_finite(tree: Any, name: str = "") -> list[str]:
    """The dotted names of the floating-point tensors and arrays in ``tree`` (nested dicts and lists of them, as a
    state dict or an optimizer's state is) that hold NaN or inf."""
    if isinstance(tree, dict):
        return [bad for key, value in tree.items() for bad in non_finite(value, f"{name}.{key}" if name else str(key))]
    if isinstance(tree, (list, tuple)):
        return [bad for i, value in enumerate(tree) for bad in non_finite(value, f"{name}.{i}" if name else str(i))]
    if hasattr(tree, "is_floating_point"):  # a torch tensor (torch is not imported here: most tools never need it)
        return [name] if tree.is_floating_point() and not bool(tree.isfinite().all()) else []
    if isinstance(tree, np.ndarray) and tree.dtype.kind in "fc":
        return [] if np.isfinite(tree).all() else [name]
    return []


def normalization_statistics(vec_normalize: Any) -> dict[str, Any]:
    """A VecNormalize's running means and variances (observations, per key for dict observations; returns)."""

    def moments(rms: Any) -> dict[str, Any]:
        return {"mean": rms.mean, "var": rms.var}

    obs = vec_normalize.obs_rms
    return {
        "obs_rms": {key: moments(rms) for key, rms in obs.items()} if isinstance(obs, dict) else moments(obs),
        "ret_rms": moments(vec_normalize.ret_rms),
    }


def non_finite_in_file(path: Path) -> list[str]:
    """``non_finite`` of a readable checkpoint file: a model ``.zip``'s saved tensors (each ``.pth`` in it: the
    policy's weights, the optimizers' state; read as tensors only, without building the model), or the running
    means and variances of a VecNormalize ``.pkl``. A replay buffer is not read (it may be gigabytes)."""
    if path.suffix == ".zip":
        import torch as th

        with zipfile.ZipFile(path) as archive:
            return [
                bad
                for name in archive.namelist()
                if name.endswith(".pth")
                for bad in non_finite(
                    th.load(io.BytesIO(archive.read(name)), map_location="cpu", weights_only=True),
                    name.removesuffix(".pth"),
                )
            ]
    if path.name.startswith(f"{CHECKPOINT_PREFIX}_{CHECKPOINT_KINDS['vecnormalize']}"):
        with path.open("rb") as f:
            return non_finite(normalization_statistics(pickle.load(f)))
    return []


def trained_config(model: Path) -> dict[str, Any] | None:
    """The config a saved model was trained with (``rundir.CONFIG_ATTRIBUTE``), or None if it does not record one."""
    with zipfile.ZipFile(model) as archive:
        data = json.loads(archive.read("data"))
    config = data.get(CONFIG_ATTRIBUTE)
    return config if isinstance(config, dict) else None


@dataclass
class Unusable:
    """A checkpoint that cannot be resumed from: its step count, the suffix its files are set aside under
    (``DAMAGED``, ``INCOMPLETE``, ``NONFINITE``) and why: (file, what is wrong with it) for each file at fault."""

    steps: int
    suffix: str
    problems: list[tuple[Path, str]]


def unusable(steps: int, files: dict[str, Path]) -> Unusable | None:
    """Why the checkpoint of ``files`` (each file it needs, by kind) cannot be used, or None if it can: a file is
    missing, else a file cannot be read, else a model tensor or a normalisation statistic is NaN or inf."""
    missing = [(path, "is missing") for path in files.values() if not path.exists()]
    if missing:
        return Unusable(steps, INCOMPLETE, missing)
    damaged = [(path, f"cannot be read ({reason})") for path in files.values() if (reason := damage(path))]
    if damaged:
        return Unusable(steps, DAMAGED, damaged)
    non_finite_files = []
    for path in files.values():
        try:
            bad = non_finite_in_file(path)
        except Exception as e:  # it passed ``damage`` but does not load (pickle's and torch's errors are many)
            damaged.append((path, f"cannot be read ({type(e).__name__}: {e})"))
            continue
        if bad:
            non_finite_files.append((path, f"holds NaN or inf ({few(bad)})"))
    if damaged:
        return Unusable(steps, DAMAGED, damaged)
    return Unusable(steps, NONFINITE, non_finite_files) if non_finite_files else None


@dataclass
class CheckpointChoice:
    """What ``choose_checkpoint`` found: the checkpoint to resume from, as (steps, files by kind), or None (the run
    has no checkpoint file: it starts over), and the newer checkpoints that cannot be used."""

    run: RunDir
    checkpoint: tuple[int, dict[str, Path]] | None
    unusable: list[Unusable]

    def set_aside(self, warn: Callable[[str], Any] = print) -> None:
        """Rename every file of each unusable checkpoint to ``<name><suffix>`` (kept for inspection, no longer a
        checkpoint; ``<name><suffix>.<k>`` if an earlier resume took that name), with one line each through
        ``warn``: which file, why, and the new names."""
        for found in self.unusable:
            files = self.run.checkpoint_files(found.steps)
            suffix, k = found.suffix, 1
            while any(path.with_name(path.name + suffix).exists() for path in files):
                k += 1
                suffix = f"{found.suffix}.{k}"
            for path in files:
                path.replace(path.with_name(path.name + suffix))
            why = "; ".join(f"{path} {problem}" for path, problem in found.problems)
            new_names = ", ".join(path.name + suffix for path in files)
            warn(f"warning: {why}; the checkpoint at {found.steps:,} steps is set aside as {new_names}")


def any_checkpoint_step_counts(run: RunDir) -> set[int]:
    """The step counts that have any checkpoint file (model, VecNormalize statistics or replay buffer)."""
    counts = set()
    for path in (run / CHECKPOINTS).glob(f"{CHECKPOINT_PREFIX}_*[0-9]_steps.*"):
        steps = path.stem.rsplit("_", 2)[-2]
        if steps.isdigit() and path in (run.checkpoint(int(steps), kind) for kind in CHECKPOINT_KINDS.values()):
            counts.add(int(steps))
    return counts


def choose_checkpoint(run: RunDir, normalize: bool, replay_buffer: bool) -> CheckpointChoice:
    """The checkpoint to resume from: the newest usable one, and the newer ones that are not (``Unusable``).

    Every step count with any checkpoint file is a checkpoint, newest first. One is usable when it has every
    file the run needs (the model; VecNormalize statistics where it normalises; the replay buffer off-policy),
    each can be read (``damage``), and the model's tensors and the VecNormalize statistics are finite
    (``non_finite_in_file``). Only checkpoints newer than the one chosen are looked at. Nothing is written:
    ``CheckpointChoice.set_aside`` moves the unusable ones aside.

    :param run: The run folder.
    :param normalize: The run normalises (its checkpoints need VecNormalize statistics).
    :param replay_buffer: The algorithm is off-policy (its checkpoints need the replay buffer).
    :return: The choice; its ``checkpoint`` is None when the run has no checkpoint file at all.
    :raises RunFolderError: when there are checkpoint files but no usable checkpoint, naming why each is not.
    """
    needed = ["model"]
    if normalize:
        needed.append("vecnormalize")
    if replay_buffer:
        needed.append("replay_buffer")
    found: list[Unusable] = []
    for steps in sorted(any_checkpoint_step_counts(run), reverse=True):
        files = {kind: run.checkpoint(steps, CHECKPOINT_KINDS[kind]) for kind in needed}
        why = unusable(steps, files)
        if why is None:
            return CheckpointChoice(run, (steps, files), found)
        found.append(why)
    if found:
        shown = "; ".join(f"{path.name} {problem}" for why in found[:3] for path, problem in why.problems)
        more = f"; and {len(found) - 3} older checkpoints" if len(found) > 3 else ""
        raise RunFolderError(
            f"No checkpoint of {run.path} can be used ({shown}{more}); nothing was changed. Start a new run "
            f"with: lattice-train --config {run / CONFIG}"
        )
    return CheckpointChoice(run, None, [])


def set_aside_after(run: RunDir, steps: int) -> None:
    """Before resuming at ``steps``: what the discarded stretch after it produced is moved aside, not lost.

    Evaluations after ``steps`` go to ``evaluations_before_resume_<k>.npz`` (``evaluations.npz`` keeps the earlier
    ones, so it stays one curve); a best model from that stretch goes to ``best_model_before_resume_<k>.zip``
    (with its VecNormalize and record) and the zoo's view of it is removed (the next evaluation saves a new best).
    """
    # k: one more than any earlier set-aside file, so that a resume killed half-way never reuses a number
    taken = [p.stem.rsplit("_", 1)[-1] for p in run.path.glob("*_before_resume_*.*")]
    k = 1 + max((int(n) for n in taken if n.isdigit()), default=0)
    data = run.evaluations()
    if data and (data["timesteps"] > steps).any():
        link_or_copy(run / EVALUATIONS, run / f"evaluations_before_resume_{k}.npz")
        kept = data["timesteps"] <= steps
        if kept.any():
            atomic_savez(run / EVALUATIONS, **{key: value[kept] for key, value in data.items()})
        else:  # none before the checkpoint: the run has no evaluation yet
            (run / EVALUATIONS).unlink()
    best = run.best_record()
    if best and best["timesteps"] > steps:
        remove_zoo_view(run)
        for name in (BEST_MODEL, BEST_VECNORMALIZE, BEST_RECORD):
            if (run / name).exists():
                stem, suffix = name.split(".")
                (run / name).replace(run / f"{stem}_before_resume_{k}.{suffix}")
