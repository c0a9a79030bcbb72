"""The run folder: the one place that knows its layout, writes its files so that no kill leaves half a file, and
says what a run is (finished, stopped, or still going).

``<log_dir>/<algo>/<env>_<N>/``, a new N per run, never overwritten::

    config.yml  args.yml  command.txt  versions.yml      what ran, how, with which packages
    <i>.monitor.csv                                      training episodes of worker i (return, length, energy)
    progress.csv  tensorboard/                           training metrics
    evaluations.npz                                      every evaluation (SB3's arrays + energy)
    best_model.zip  best_vecnormalize.pkl  best_model.yml    the best evaluated policy, and which evaluation it was
    checkpoints/rl_model_<steps>_steps.zip               (+ rl_model_vecnormalize_<steps>_steps.pkl, and for SAC
                                                            rl_model_replay_buffer_<steps>_steps.pkl: two newest)
    checkpoints/<checkpoint file>.damaged                a checkpoint a resume set aside (all its files, kept for
               <checkpoint file>.incomplete              inspection): a file could not be read, a file it needs
               <checkpoint file>.nonfinite               was missing, or it held NaN or inf (``checkpoints``)
    final_model.zip  vecnormalize.pkl                    at the end
    learning_curve.png  energy.png  summary.yml          at the end
    videos/                                              with --video, or lattice-render
    error.txt                                            why the run stopped (an error, Ctrl-C, SIGTERM), until resumed
    writer.lock                                          the process writing the folder (``lock``)
    <env>.zip  <env>/config.yml  <env>/args.yml  <env>/vecnormalize.pkl
                                                         rl-baselines3-zoo's view of the best policy (``zoo``)

The folder's other jobs live beside it: ``lock`` (one process writes a folder: ``writer.lock``), ``checkpoints``
(which checkpoint a resume continues from, and what it sets aside) and ``zoo`` (rl-baselines3-zoo's view of the
best policy: its ``enjoy`` plays it with its own statistics). Checkpoints live in ``checkpoints/``, where the zoo's
``--load-checkpoint`` does not look: it fails with "No model found" instead of playing a checkpoint with other
statistics.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from lattice.experiments.errors import ConfigError, RunFolderError
from lattice.experiments.load import dump_config, load_yaml

CONFIG = "config.yml"
ARGS = "args.yml"
COMMAND = "command.txt"
VERSIONS = "versions.yml"
PROGRESS = "progress.csv"
TENSORBOARD = "tensorboard"
EVALUATIONS = "evaluations.npz"
BEST_MODEL = "best_model.zip"
BEST_VECNORMALIZE = "best_vecnormalize.pkl"
BEST_RECORD = "best_model.yml"
CHECKPOINTS = "checkpoints"
FINAL_MODEL = "final_model.zip"
VECNORMALIZE = "vecnormalize.pkl"
LEARNING_CURVE = "learning_curve.png"
ENERGY_PLOT = "energy.png"
SUMMARY = "summary.yml"
ERROR = "error.txt"
VIDEOS = "videos"
WANDB_ID = "wandb_id.txt"
WORKER = "worker.txt"
LOCK = "writer.lock"
CHECKPOINT_PREFIX = "rl_model"  # SB3's CheckpointCallback default, which rl-baselines3-zoo also uses
# The files of a checkpoint, by the ``kind`` of ``RunDir.checkpoint`` (SB3's names).
CHECKPOINT_KINDS = {"model": "", "vecnormalize": "vecnormalize_", "replay_buffer": "replay_buffer_"}
# The model attribute holding the resolved config a model was trained with: SB3's save() writes every attribute
# of the model into the zip's JSON "data" (and load() restores it), so checkpoints and final models carry it.
CONFIG_ATTRIBUTE = "run_config"

# Packages a result depends on, recorded in versions.yml.
PACKAGES = ("sb3-lattice", "torch", "stable-baselines3", "sb3-contrib", "gymnasium", "mujoco", "myosuite", "numpy")


def temporary(path: Path) -> Path:
    """Where ``path`` is written before ``os.replace`` moves it into place (hidden, same folder and suffix)."""
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file: a killed process leaves the old file or the new one."""
    temporary(path).write_text(text)
    os.replace(temporary(path), path)


def atomic_savez(path: Path, **arrays: Any) -> None:
    """``np.savez`` to ``path`` through a temporary file."""
    np.savez(temporary(path), **arrays)
    os.replace(temporary(path), path)


def link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes a copy of ``source`` (a hard link where the file system allows), atomically."""
    temporary(target).unlink(missing_ok=True)
    try:
        os.link(source, temporary(target))
    except OSError:
        shutil.copyfile(source, temporary(target))
    os.replace(temporary(target), target)


def checkpoint_steps(path: Path) -> int:
    """The step count in a checkpoint file name, ``..._<steps>_steps.<ext>``."""
    return int(path.stem.rsplit("_", 2)[-2])


def few(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names``, and how many more there are."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def env_name(env_id: str) -> str:
    """An env id as it appears in file and folder names, as rl-baselines3-zoo writes it (huggingface_sb3's
    ``EnvironmentName``): a namespace's ``/`` becomes ``-`` (``lattice/OveractuatedReach-v0`` →
    ``lattice-OveractuatedReach-v0``)."""
    return env_id.replace("/", "-")


def package_versions() -> dict[str, Any]:
    """Versions of Python and of the packages a result depends on; the git commit only when this package is
    imported from its own source checkout (not from whatever repository the user runs in)."""
    versions: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    versions["git_commit"] = _source_commit()
    return versions


def _source_commit() -> str | None:
    """The commit of this package's own checkout (``-dirty`` with uncommitted changes), or None when installed."""
    root = Path(__file__).resolve().parents[2]
    pyproject = root / "pyproject.toml"
    if not (root / ".git").exists() or not pyproject.is_file() or 'name = "sb3-lattice"' not in pyproject.read_text():
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def command_line() -> str:
    """This process's command line, as recorded in ``command.txt``."""
    return shlex.join([Path(sys.executable).name, *sys.argv])


class RunDir:
    """A run folder: the paths of its files and what they say.

    :param path: The folder (it need not exist yet).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @classmethod
    def create(cls, log_dir: Path, algo: str, env_id: str) -> RunDir:
        """Create ``log_dir/algo/<env>_<N>`` with the first free N (safe against concurrent runs)."""
        parent = log_dir / algo
        parent.mkdir(parents=True, exist_ok=True)
        name = env_name(env_id)
        taken = [int(p.name.rsplit("_", 1)[1]) for p in parent.glob(f"{name}_*") if p.name.rsplit("_", 1)[1].isdigit()]
        n = max(taken, default=0) + 1
        while True:
            try:
                (parent / f"{name}_{n}").mkdir()
                return cls(parent / f"{name}_{n}")
            except FileExistsError:
                n += 1

    # -- what a run is ------------------------------------------------------------------------------------------

    def is_run(self) -> bool:
        """Whether this is a run folder (it has ``config.yml`` and ``command.txt``)."""
        return (self / CONFIG).is_file() and (self / COMMAND).is_file()

    def config(self) -> dict[str, Any]:
        """The run's ``config.yml`` as written (not validated)."""
        return load_yaml(self / CONFIG)

    def finished_summary(self) -> dict[str, Any] | None:
        """The run's ``summary.yml`` if it says the run finished, else None (still running, killed, or stopped)."""
        path = self / SUMMARY
        summary = load_yaml(path) if path.is_file() else None
        return summary if summary and summary.get("status") == "finished" else None

    def status(self) -> str:
        """``finished``, ``stopped at N steps: <error>`` (from ``error.txt``), or ``not finished`` (running, or
        killed)."""
        if self.finished_summary() is not None:
            return "finished"
        error = self / ERROR
        return error.read_text().splitlines()[0] if error.is_file() else "not finished"

    def best_record(self) -> dict[str, Any]:
        """``best_model.yml``: the step count and mean return of the evaluation that saved ``best_model.zip``
        (empty if there is none)."""
        path = self / BEST_RECORD
        return load_yaml(path) if path.is_file() else {}

    def evaluations(self) -> dict[str, np.ndarray]:
        """The arrays of ``evaluations.npz`` (empty if none was written yet)."""
        path = self / EVALUATIONS
        return dict(np.load(path)) if path.is_file() else {}

    # -- recording what runs ------------------------------------------------------------------------------------

    def record_start(self, config: dict[str, Any], args: dict[str, Any]) -> None:
        """Write what runs: the resolved config, the CLI arguments, the command line and the package versions."""
        dump_config(config, self / CONFIG)
        (self / ARGS).write_text(yaml.safe_dump(args, sort_keys=False))
        (self / COMMAND).write_text(command_line() + "\n")
        (self / VERSIONS).write_text(yaml.safe_dump(package_versions(), sort_keys=False))

    def record_resume(self) -> None:
        """Add this process's command line to ``command.txt``."""
        with (self / COMMAND).open("a") as f:
            f.write(command_line() + "\n")

    def record_error(self, steps: int, error: BaseException, traceback_text: str) -> None:
        """``error.txt``: why the run stopped (its first line is what reports show)."""
        first_line = (str(error).splitlines() or [""])[0]
        (self / ERROR).write_text(f"stopped at {steps:,} steps: {type(error).__name__}: {first_line}\n{traceback_text}")

    def record_stop(self, steps: int, why: str, checkpoint: int | None) -> None:
        """``error.txt`` for a run stopped on request (Ctrl-C, SIGTERM): where it can resume from, and how."""
        saved = self.checkpoint_step_counts()
        resume_at = f"the checkpoint at {saved[-1]:,} steps" if saved else "the start (no checkpoint was saved)"
        written = f"; a checkpoint was saved at {checkpoint:,} steps" if checkpoint is not None else ""
        (self / ERROR).write_text(
            f"stopped at {steps:,} steps: {why}{written}\n"
            f"Resume from {resume_at} with: lattice-train --resume {self.path}\n"
        )

    # -- checkpoints and models ---------------------------------------------------------------------------------

    def monitor_columns(self) -> list[str] | None:
        """The columns of the training monitor CSV (worker 0's; all workers share them), or None before it exists.

        SB3's Monitor appends rows to a resumed run's file without rewriting its header, so a resume keeps the
        columns the run began with (a run of an older version may lack one that is recorded now)."""
        path = self / "0.monitor.csv"
        if not path.is_file():
            return None
        with path.open() as f:  # the header only: the file holds every episode of the run
            f.readline()  # SB3's JSON line (t_start, env_id)
            columns = f.readline().rstrip("\n")
        return columns.split(",") if columns else None

    def checkpoint(self, steps: int, kind: str = "") -> Path:
        """A checkpoint file: the model (``kind=""``), ``vecnormalize_`` or ``replay_buffer_`` (SB3's names)."""
        extension = "zip" if kind == "" else "pkl"
        return self / CHECKPOINTS / f"{CHECKPOINT_PREFIX}_{kind}{steps}_steps.{extension}"

    def checkpoint_step_counts(self) -> list[int]:
        """Step counts of the checkpoints whose model file exists, ascending."""
        return sorted(checkpoint_steps(p) for p in (self / CHECKPOINTS).glob(f"{CHECKPOINT_PREFIX}_*[0-9]_steps.zip"))

    def checkpoint_files(self, steps: int) -> list[Path]:
        """The files of the checkpoint at ``steps`` that exist (model, VecNormalize statistics, replay buffer)."""
        paths = (self.checkpoint(steps, kind) for kind in CHECKPOINT_KINDS.values())
        return [path for path in paths if path.exists()]

    def model_files(self, which: str) -> tuple[Path, Path | None]:
        """A saved policy and its VecNormalize statistics (None if the run does not normalise): ``best``, ``final``
        or a checkpoint's step count.

        :raises ConfigError: ``which`` is none of these.
        :raises RunFolderError: the run has no such model (naming the models it has)."""
        if which == "best":
            model, stats = self / BEST_MODEL, self / BEST_VECNORMALIZE
        elif which == "final":
            model, stats = self / FINAL_MODEL, self / VECNORMALIZE
        elif which.isdigit():
            model, stats = self.checkpoint(int(which)), self.checkpoint(int(which), "vecnormalize_")
        else:
            raise ConfigError(f"--model {which!r}: choose best, final or a checkpoint's step count")
        if not model.exists():
            available = [n for n in ("best", "final") if (self / f"{n}_model.zip").exists()]
            available += [str(s) for s in self.checkpoint_step_counts()]
            raise RunFolderError(
                f"No {which} model in {self.path} ({model.name} missing); "
                + (f"available: {', '.join(available)}" if available else "it has no saved model yet")
            )
        return model, stats if stats.exists() else None
