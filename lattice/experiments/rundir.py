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
               <checkpoint file>.nonfinite               was missing, or it held NaN or inf (see ``CheckpointChoice``)
    final_model.zip  vecnormalize.pkl                    at the end
    learning_curve.png  energy.png  summary.yml          at the end
    videos/                                              with --video, or lattice-render
    error.txt                                            why the run stopped (an error, Ctrl-C, SIGTERM), until resumed
    writer.lock                                          the process writing the folder (see ``writer_lock``)
    <env>.zip  <env>/config.yml  <env>/args.yml  <env>/vecnormalize.pkl
                                                         rl-baselines3-zoo's view of the best policy (see below)

rl-baselines3-zoo's ``enjoy`` (and ``record_video``, ``push_to_hub``) read ``logs/<algo>/<env>_<N>/<env>.zip`` and
normalise with ``<env>/vecnormalize.pkl`` whichever model they load (``--load-best`` reads ``best_model.zip``).
Both names serve this run's best policy and its own statistics, so either choice plays it exactly as it was
evaluated; ``<env>/config.yml`` tells the zoo to normalise and which wrappers the env had. Checkpoints live in
``checkpoints/``, where the zoo's ``--load-checkpoint`` does not look: it fails with "No model found" instead of
playing a checkpoint with other statistics.

One writer: a process that writes into a run folder (a run, its resume) holds the folder's writer lock for as long
as it runs, and a second one is refused (``FolderInUse``) with a line naming the holder. Every checkpoint model
carries the config it was trained with (``CONFIG_ATTRIBUTE``), so a resume can tell whether ``config.yml`` was
edited since.

A checkpoint is a unit: the model, its VecNormalize statistics (where the run normalises) and, off-policy, its
replay buffer, all readable and finite, or it is not a checkpoint (``RunDir.choose_checkpoint``). A resume
continues from the newest one; the files of newer step counts are set aside under the suffixes above, never
written over or deleted.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import io
import json
import os
import pickle
import pickletools
import platform
import shlex
import shutil
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; folders are not guarded there
    fcntl = None  # type: ignore[assignment]

import numpy as np
import yaml

from lattice.experiments.config import ConfigError, dump_config, load_yaml

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
# Suffixes of the files of a checkpoint that a resume set aside (kept for inspection, no longer a checkpoint), by why.
DAMAGED = ".damaged"  # one of its files cannot be read
INCOMPLETE = ".incomplete"  # a file the run needs (VecNormalize statistics, replay buffer) is missing
NONFINITE = ".nonfinite"  # its weights or normalisation statistics hold NaN or inf
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


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` becomes a copy of ``source`` (a hard link where the file system allows), atomically."""
    temporary(target).unlink(missing_ok=True)
    try:
        os.link(source, temporary(target))
    except OSError:
        shutil.copyfile(source, temporary(target))
    os.replace(temporary(target), target)


class FolderInUse(ConfigError):
    """Another process is writing into the folder (the CLI exits with code 2)."""


def _holder() -> str:
    """Who holds a writer lock, as its file records it: process id, host, start time and command line."""
    started = datetime.datetime.now().isoformat(timespec="seconds")
    return f"pid {os.getpid()} on {socket.gethostname()} since {started} ({command_line()})"


@contextlib.contextmanager
def writer_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s writer lock for the ``with`` block, or raise ``FolderInUse`` naming the process that holds it.

    The lock is the operating system's advisory lock (``flock``) on ``folder/writer.lock``: the kernel releases it
    when its process ends in any way (SIGKILL and power loss included), so a killed run never blocks its resume;
    the file's text only names the holder for the message. On a cluster file system it guards as far as that
    file system supports ``flock`` (NFSv4 and Lustre with ``-o flock`` do).
    """
    if fcntl is None:
        yield
        return
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = b""
            for _ in range(20):  # the holder writes its name right after taking the lock
                text = os.pread(fd, 4096, 0)
                if text:
                    break
                time.sleep(0.05)
            holder = text.decode(errors="replace").strip() or "another process"
            raise FolderInUse(
                f"{folder} is in use by {holder}; one process writes a folder at a time: wait for it to end, or stop "
                "it (a stopped or killed process frees the folder)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, (_holder() + "\n").encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def checkpoint_steps(path: Path) -> int:
    """The step count in a checkpoint file name, ``..._<steps>_steps.<ext>``."""
    return int(path.stem.rsplit("_", 2)[-2])


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


def few(names: list[str], shown: int = 3) -> str:
    """The first ``shown`` of ``names``, and how many more there are."""
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def config_differences(recorded: dict[str, Any], trained: dict[str, Any]) -> list[str]:
    """``key: trained → recorded`` for every setting (dotted for nested ones) in which two configs differ.

    :param recorded: The config as ``config.yml`` says now.
    :param trained: The config a model was trained with (``RunDir.trained_config``).
    """

    def flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        items: dict[str, Any] = {}
        for key, value in config.items():
            if isinstance(value, dict) and value:
                items.update(flat(value, f"{prefix}{key}."))
            else:
                items[f"{prefix}{key}"] = value
        return items

    # compared as JSON values, as the model's zip stores them (tuples become lists)
    before, after = flat(json.loads(json.dumps(trained))), flat(json.loads(json.dumps(recorded)))
    return [
        f"{key}: {before.get(key, '(unset)')!r} → {after.get(key, '(unset)')!r}"
        for key in sorted(set(before) | set(after))
        if key not in before or key not in after or before[key] != after[key]
    ]


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

    def writing(self) -> contextlib.AbstractContextManager[None]:
        """The folder's writer lock (``writer_lock``): hold it while writing into the folder."""
        return writer_lock(self.path)

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

    def choose_checkpoint(self, normalize: bool, replay_buffer: bool) -> CheckpointChoice:
        """The checkpoint to resume from: the newest usable one, and the newer ones that are not (``Unusable``).

        Every step count with any checkpoint file is a checkpoint, newest first. One is usable when it has every
        file the run needs (the model; VecNormalize statistics where it normalises; the replay buffer off-policy),
        each can be read (``damage``), and the model's tensors and the VecNormalize statistics are finite
        (``non_finite_in_file``). Only checkpoints newer than the one chosen are looked at. Nothing is written:
        ``CheckpointChoice.set_aside`` moves the unusable ones aside.

        :param normalize: The run normalises (its checkpoints need VecNormalize statistics).
        :param replay_buffer: The algorithm is off-policy (its checkpoints need the replay buffer).
        :return: The choice; its ``checkpoint`` is None when the run has no checkpoint file at all.
        :raises ConfigError: when there are checkpoint files but no usable checkpoint, naming why each is not.
        """
        needed = ["model"]
        if normalize:
            needed.append("vecnormalize")
        if replay_buffer:
            needed.append("replay_buffer")
        unusable: list[Unusable] = []
        for steps in sorted(self._any_checkpoint_step_counts(), reverse=True):
            files = {kind: self.checkpoint(steps, CHECKPOINT_KINDS[kind]) for kind in needed}
            found = _unusable(steps, files)
            if found is None:
                return CheckpointChoice(self, (steps, files), unusable)
            unusable.append(found)
        if unusable:
            shown = "; ".join(f"{path.name} {problem}" for found in unusable[:3] for path, problem in found.problems)
            more = f"; and {len(unusable) - 3} older checkpoints" if len(unusable) > 3 else ""
            raise ConfigError(
                f"No checkpoint of {self.path} can be used ({shown}{more}); nothing was changed. Start a new run "
                f"with: lattice-train --config {self / CONFIG}"
            )
        return CheckpointChoice(self, None, [])

    def _any_checkpoint_step_counts(self) -> set[int]:
        """The step counts that have any checkpoint file (model, VecNormalize statistics or replay buffer)."""
        counts = set()
        for path in (self / CHECKPOINTS).glob(f"{CHECKPOINT_PREFIX}_*[0-9]_steps.*"):
            steps = path.stem.rsplit("_", 2)[-2]
            if steps.isdigit() and path in (self.checkpoint(int(steps), kind) for kind in CHECKPOINT_KINDS.values()):
                counts.add(int(steps))
        return counts

    def trained_config(self, model: Path) -> dict[str, Any] | None:
        """The config a saved model was trained with (``CONFIG_ATTRIBUTE``), or None if it does not record one."""
        with zipfile.ZipFile(model) as archive:
            data = json.loads(archive.read("data"))
        config = data.get(CONFIG_ATTRIBUTE)
        return config if isinstance(config, dict) else None

    def model_files(self, which: str) -> tuple[Path, Path | None]:
        """A saved policy and its VecNormalize statistics (None if the run does not normalise): ``best``, ``final``
        or a checkpoint's step count. Raises ConfigError naming the models that exist."""
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
            raise ConfigError(
                f"No {which} model in {self.path} ({model.name} missing); "
                + (f"available: {', '.join(available)}" if available else "it has no saved model yet")
            )
        return model, stats if stats.exists() else None

    def set_aside_after(self, steps: int) -> None:
        """Before resuming at ``steps``: what the discarded stretch after it produced is moved aside, not lost.

        Evaluations after ``steps`` go to ``evaluations_before_resume_<k>.npz`` (``evaluations.npz`` keeps the earlier
        ones, so it stays one curve); a best model from that stretch goes to ``best_model_before_resume_<k>.zip``
        (with its VecNormalize and record) and the zoo's view of it is removed (the next evaluation saves a new best).
        """
        # k: one more than any earlier set-aside file, so that a resume killed half-way never reuses a number
        taken = [p.stem.rsplit("_", 1)[-1] for p in self.path.glob("*_before_resume_*.*")]
        k = 1 + max((int(n) for n in taken if n.isdigit()), default=0)
        data = self.evaluations()
        if data and (data["timesteps"] > steps).any():
            _link_or_copy(self / EVALUATIONS, self / f"evaluations_before_resume_{k}.npz")
            kept = data["timesteps"] <= steps
            if kept.any():
                atomic_savez(self / EVALUATIONS, **{key: value[kept] for key, value in data.items()})
            else:  # none before the checkpoint: the run has no evaluation yet
                (self / EVALUATIONS).unlink()
        best = self.best_record()
        if best and best["timesteps"] > steps:
            self._remove_zoo_view()
            for name in (BEST_MODEL, BEST_VECNORMALIZE, BEST_RECORD):
                if (self / name).exists():
                    stem, suffix = name.split(".")
                    (self / name).replace(self / f"{stem}_before_resume_{k}.{suffix}")

    # -- rl-baselines3-zoo's view ---------------------------------------------------------------------------------

    def write_zoo_config(self, config: dict[str, Any], policy: str) -> None:
        """``<env>/config.yml`` and ``<env>/args.yml`` as rl-baselines3-zoo writes them: whether (and how) to
        normalise, the env's wrappers and keywords, so that its ``enjoy`` rebuilds this run's env."""
        folder = self / env_name(config["env"])
        folder.mkdir(exist_ok=True)
        wrappers: list[Any] = []
        if config["reward_weights"]:
            wrappers.append({"lattice.envs.RewardWeights": {"weights": dict(config["reward_weights"])}})
        wrappers.append("lattice.envs.EpisodeEnergy")
        hyperparams = {"policy": policy, "normalize": config["normalize"], "env_wrapper": wrappers}
        env_kwargs = dict(config["env_kwargs"])
        if config["max_episode_steps"] is not None:
            env_kwargs["max_episode_steps"] = config["max_episode_steps"]
        atomic_write_text(folder / CONFIG, yaml.safe_dump(hyperparams, sort_keys=False))
        atomic_write_text(folder / ARGS, yaml.safe_dump({"env": config["env"], "env_kwargs": env_kwargs}))

    def publish_zoo_view(self, env_id: str) -> None:
        """Point the zoo's names at the best policy: the old ``<env>.zip`` is removed first, then
        ``<env>/vecnormalize.pkl`` and ``<env>.zip`` are linked, so that a kill at any point leaves the zoo no model
        rather than a model with another model's statistics."""
        name = env_name(env_id)
        (self / f"{name}.zip").unlink(missing_ok=True)
        if (self / BEST_VECNORMALIZE).exists():
            (self / name).mkdir(exist_ok=True)
            _link_or_copy(self / BEST_VECNORMALIZE, self / name / VECNORMALIZE)
        _link_or_copy(self / BEST_MODEL, self / f"{name}.zip")

    def _remove_zoo_view(self) -> None:
        for model in self.path.glob("*.zip"):
            if (self.path / model.stem).is_dir() and model.name not in (BEST_MODEL, FINAL_MODEL):
                model.unlink()  # the model first: the zoo finds no model rather than one with other statistics
                (self.path / model.stem / VECNORMALIZE).unlink(missing_ok=True)


@dataclass
class Unusable:
    """A checkpoint that cannot be resumed from: its step count, the suffix its files are set aside under
    (``DAMAGED``, ``INCOMPLETE``, ``NONFINITE``) and why: (file, what is wrong with it) for each file at fault."""

    steps: int
    suffix: str
    problems: list[tuple[Path, str]]


def _unusable(steps: int, files: dict[str, Path]) -> Unusable | None:
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
    """What ``RunDir.choose_checkpoint`` found: the checkpoint to resume from, as (steps, files by kind), or None
    (the run has no checkpoint file: it starts over), and the newer checkpoints that cannot be used."""

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
