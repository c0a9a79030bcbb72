"""One training run: a resolved config → envs, model, callbacks → a run folder; and resuming one.

The run folder (``<log_dir>/<algo>/<env>_<N>/``, a new N per run, never overwritten)::

    config.yml  args.yml  command.txt  versions.yml      what ran, how, with which packages
    <i>.monitor.csv                                      training episodes of worker i (return, length, energy)
    progress.csv  tensorboard/                           training metrics
    evaluations.npz  best_model.zip  best_vecnormalize.pkl  best_model.yml
    checkpoints/rl_model_<steps>_steps.zip (+ _vecnormalize_, _replay_buffer_ .pkl)
    final_model.zip  vecnormalize.pkl                    at the end
    learning_curve.png  energy.png  summary.yml          at the end
    videos/                                              with --video, or experiments/render.py
    error.txt                                            if an error stopped it: the step and the traceback

``resume(run_dir)`` continues from the newest complete checkpoint to the same total, appending to the logs.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

from lattice.callbacks import EnergyEvalCallback, EpisodeEnergyCallback, RunCheckpointCallback, checkpoint_steps
from lattice.config import ALGOS, ConfigError, algo_kwargs, dump_config, load_yaml, validate
from lattice.envs import ENERGY_KEYS, make_env

PACKAGES = ("lattice", "torch", "stable-baselines3", "sb3-contrib", "gymnasium", "mujoco", "myosuite", "numpy")


class AppendingCSVOutputFormat(CSVOutputFormat):
    """SB3's CSV logger continuing an existing file (a resumed run) instead of truncating it.

    A last line cut short by a kill is dropped; the header is read back so that columns stay aligned.
    """

    def __init__(self, filename: str):
        if not os.path.exists(filename):
            super().__init__(filename)
            return
        self.file = open(filename, "r+")
        text = self.file.read()
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]
            self.file.seek(0)
            self.file.truncate()
            self.file.write(text)
        self.keys = text.split("\n", 1)[0].split(",") if text else []
        self.separator, self.quotechar = ",", '"'
        self.file.seek(0, os.SEEK_END)


def new_run_dir(log_dir: Path, algo: str, env_id: str) -> Path:
    """Create and return ``log_dir/algo/env_<N>`` with the first free N (safe against concurrent runs); a
    namespaced id (``lattice/OveractuatedReach-v0``) is named without its namespace."""
    parent = log_dir / algo
    parent.mkdir(parents=True, exist_ok=True)
    env_id = env_id.rsplit("/", 1)[-1]
    taken = [int(p.name.rsplit("_", 1)[1]) for p in parent.glob(f"{env_id}_*") if p.name.rsplit("_", 1)[1].isdigit()]
    n = max(taken, default=0) + 1
    while True:
        try:
            (parent / f"{env_id}_{n}").mkdir()
            return parent / f"{env_id}_{n}"
        except FileExistsError:
            n += 1


def package_versions() -> dict[str, Any]:
    """Versions of Python and of the packages a result depends on, and the git commit of this checkout."""
    versions: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    try:
        root = Path(__file__).resolve().parent.parent
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True)
        versions["git_commit"] = commit.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        versions["git_commit"] = None
    return versions


def env_info_keywords(config: dict[str, Any]) -> tuple[str, ...]:
    """The episode keys (energy, success) the task's env reports, for the Monitor CSV columns."""
    env = make_env(config["env"], config["env_kwargs"], config["max_episode_steps"], config["reward_weights"])
    try:
        env.reset(seed=0)  # checks the reward weights against the env's terms
        return env.info_keywords
    finally:
        env.close()


def make_vec_envs(
    config: dict[str, Any],
    seed: int,
    n_envs: int,
    monitor_dir: Path | None,
    info_keywords: tuple[str, ...],
    append: bool = False,
) -> VecEnv:
    """``n_envs`` envs of the task (one process each when > 1), worker i seeded ``seed + i``, with Monitor
    recording ``info_keywords`` (see ``env_info_keywords``) per episode."""
    thunk = functools.partial(
        make_env, config["env"], config["env_kwargs"], config["max_episode_steps"], config["reward_weights"]
    )
    return make_vec_env(
        thunk,
        n_envs=n_envs,
        seed=seed,
        monitor_dir=None if monitor_dir is None else str(monitor_dir),
        monitor_kwargs=dict(info_keywords=info_keywords, override_existing=not append),
        vec_env_cls=SubprocVecEnv if n_envs > 1 else DummyVecEnv,
    )


def normalized(venv: VecEnv, config: dict[str, Any], training: bool) -> VecEnv:
    """Wrap in VecNormalize as the config says; the evaluation copy is frozen and returns raw rewards."""
    if config["normalize"] is False:
        return venv
    kwargs = dict(config["normalize"])
    kwargs.setdefault("gamma", config["hyperparams"].get("gamma", 0.99))
    if not training:
        kwargs.update(training=False, norm_reward=False)
    return VecNormalize(venv, **kwargs)


def eval_env(config: dict[str, Any], info_keywords: tuple[str, ...]) -> VecEnv:
    """The evaluation env: one env seeded ``seed + n_envs`` (no training worker has that seed)."""
    venv = make_vec_envs(config, config["seed"] + config["n_envs"], 1, None, info_keywords)
    return normalized(venv, config, training=False)


def build_model(config: dict[str, Any], env: VecEnv) -> BaseAlgorithm:
    """The algorithm with its Lattice policy, as the resolved config says."""
    algo_class, policy_class = ALGOS[config["algo"]]
    return algo_class(policy_class, env, seed=config["seed"], device=config["device"], **algo_kwargs(config))


def check_buildable(config: dict[str, Any]) -> None:
    """Build the model on one throwaway env so that a bad value fails here, before any folder exists."""
    try:
        probe = make_env(config["env"], config["env_kwargs"], config["max_episode_steps"], config["reward_weights"])
        probe.reset(seed=0)  # checks the reward weights against the env's terms
        env = normalized(DummyVecEnv([lambda: probe]), config, training=True)
        build_model({**config, "device": "cpu"}, env).env.close()  # type: ignore[union-attr]
    except (ValueError, TypeError, AssertionError, KeyError, RuntimeError) as e:
        raise ConfigError(
            f"Cannot build {config['algo']} with noise {config['noise']!r} on {config['env']}: {e}"
        ) from e


def _logger(run_dir: Path) -> Logger:
    """CSV (appending) and tensorboard output in the run folder; evaluations print their own line."""
    csv = AppendingCSVOutputFormat(str(run_dir / "progress.csv"))
    return Logger(str(run_dir), [csv, TensorBoardOutputFormat(str(run_dir / "tensorboard"))])


def start_wandb(run_dir: Path, config: dict[str, Any], project: str, entity: str | None) -> Any:
    """Start (or continue, for a resumed run) a wandb run that syncs the tensorboard metrics.

    Without an API key wandb runs offline (``WANDB_MODE=offline``; upload later with ``wandb sync``) instead
    of failing; a mode set by the user is kept.
    """
    import wandb

    if "WANDB_MODE" not in os.environ and not (os.environ.get("WANDB_API_KEY") or _netrc_has_wandb()):
        os.environ["WANDB_MODE"] = "offline"
        print("wandb: no API key found, logging offline (upload later with `wandb sync`)", flush=True)
    id_file = run_dir / "wandb_id.txt"
    run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
    id_file.write_text(run_id)
    return wandb.init(
        project=project,
        entity=entity,
        id=run_id,
        resume="allow",
        name=f"{config['algo']}-{config['noise']}-{run_dir.name}",
        config=config,
        dir=str(run_dir),
        sync_tensorboard=True,
    )


def _netrc_has_wandb() -> bool:
    import netrc

    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def latest_checkpoint(run_dir: Path, algo: str, normalize: bool) -> tuple[int, dict[str, Path]] | None:
    """The newest checkpoint with all its files (model, and VecNormalize / replay buffer where used)."""
    folder = run_dir / "checkpoints"
    needs_buffer = issubclass(ALGOS[algo][0], OffPolicyAlgorithm)
    for model_path in sorted(folder.glob("rl_model_*_steps.zip"), key=checkpoint_steps, reverse=True):
        steps = checkpoint_steps(model_path)
        files = {"model": model_path}
        if normalize:
            files["vecnormalize"] = folder / f"rl_model_vecnormalize_{steps}_steps.pkl"
        if needs_buffer:
            files["replay_buffer"] = folder / f"rl_model_replay_buffer_{steps}_steps.pkl"
        if all(p.exists() for p in files.values()):  # the model file is renamed into place last
            return steps, files
    return None


def _set_aside_discarded(run_dir: Path, start_steps: int, evaluation: EnergyEvalCallback) -> None:
    """Before resuming at ``start_steps``: what the discarded stretch after it produced is moved aside, not lost.

    Evaluations after the checkpoint go to ``evaluations_before_resume_<k>.npz`` (``evaluations.npz`` keeps the
    earlier ones, so it stays one curve); a best model from that stretch goes to ``best_model_before_resume_<k>.zip``
    (with its VecNormalize and record), and the next evaluation saves a new best model.
    """
    k = 1 + len(list(run_dir.glob("evaluations_before_resume_*.npz")))
    evaluations = run_dir / "evaluations.npz"
    if evaluations.exists():
        if (np.load(evaluations)["timesteps"] > start_steps).any():
            evaluations = evaluations.replace(run_dir / f"evaluations_before_resume_{k}.npz")
        evaluation.restore(evaluations, start_steps)
    best = run_dir / "best_model.yml"
    if best.exists() and load_yaml(best)["timesteps"] > start_steps:
        for name in ("best_model.zip", "best_vecnormalize.pkl", "best_model.yml"):
            if (run_dir / name).exists():
                stem, suffix = name.split(".")
                (run_dir / name).replace(run_dir / f"{stem}_before_resume_{k}.{suffix}")
        evaluation.best_mean_reward = -np.inf


def train(
    config: dict[str, Any],
    run_dir: Path,
    progress_bar: bool = True,
    wandb_project: str | None = None,
    wandb_entity: str | None = None,
    video: bool = False,
    resuming: bool = False,
    resume_from: tuple[int, dict[str, Path]] | None = None,
) -> dict[str, Any]:
    """Train as ``config`` says into ``run_dir`` (created by the caller), or continue from a checkpoint.

    :param config: A resolved config (``lattice.config.resolve_config``).
    :param run_dir: The run folder; ``config.yml`` and the rest are written here.
    :param progress_bar: Show SB3's progress bar.
    :param wandb_project: Log to wandb (tensorboard sync, videos) under this project; None: no wandb.
    :param wandb_entity: wandb entity (team or user).
    :param video: Render a rollout of the best model to ``videos/`` at the end.
    :param resuming: Continue a run in ``run_dir``: append to its logs.
    :param resume_from: (steps, files) of the checkpoint to continue from (see ``latest_checkpoint``); None
        with ``resuming``: start over (no checkpoint had been saved), still appending to the logs.
    :return: The summary (also written to ``summary.yml``).
    """
    th.set_num_threads(1)  # small MLPs: one thread is fastest, and parallel runs do not fight over cores
    start_steps = 0 if resume_from is None else resume_from[0]
    wandb_run = start_wandb(run_dir, config, wandb_project, wandb_entity) if wandb_project else None
    info_keywords = env_info_keywords(config)
    # A resumed run draws new episodes: its workers are seeded past the ones of the first part.
    venv = make_vec_envs(config, config["seed"] + start_steps, config["n_envs"], run_dir, info_keywords, resuming)
    evaluation = EnergyEvalCallback(
        eval_env(config, info_keywords),
        run_dir,
        eval_freq=config["eval_freq"],
        n_eval_episodes=config["eval_episodes"],
    )
    if resume_from is None:
        model = build_model(config, normalized(venv, config, training=True))
    else:
        files = resume_from[1]
        if "vecnormalize" in files:
            venv = VecNormalize.load(str(files["vecnormalize"]), venv)
            venv.training = True
        model = ALGOS[config["algo"]][0].load(files["model"], env=venv, device=config["device"])
        model.set_random_seed(config["seed"] + start_steps)  # load() reseeded everything with the first seed
        if isinstance(model, OffPolicyAlgorithm) and "replay_buffer" in files:
            model.load_replay_buffer(files["replay_buffer"])
    if resuming:
        _set_aside_discarded(run_dir, start_steps, evaluation)
    model.set_logger(_logger(run_dir))
    checkpoints = RunCheckpointCallback(config["save_freq"], run_dir / "checkpoints")
    callbacks = CallbackList([EpisodeEnergyCallback(), evaluation, checkpoints])

    start = time.time()
    try:
        model.learn(
            config["timesteps"] - start_steps,
            callback=callbacks,
            progress_bar=progress_bar,
            reset_num_timesteps=resume_from is None,
        )
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt) and model.num_timesteps > start_steps:
            checkpoints.save_interrupted()  # Ctrl-C: keep what was trained, to resume from
        elif not isinstance(e, KeyboardInterrupt):  # why the run stopped, for reports (lattice.report.run_status)
            first_line = (str(e).splitlines() or [""])[0]
            (run_dir / "error.txt").write_text(
                f"stopped at {model.num_timesteps:,} steps: {type(e).__name__}: {first_line}\n"
                + "".join(traceback.format_exception(e))
            )
        model.logger.close()
        raise
    elapsed = time.time() - start
    (run_dir / "error.txt").unlink(missing_ok=True)  # an earlier attempt's error, now resumed past

    if not evaluation.evaluations_timesteps or evaluation.evaluations_timesteps[-1] != model.num_timesteps:
        evaluation.evaluate()  # the final policy, so that the summary describes it
    model.logger.close()
    model.save(run_dir / "final_model.zip")
    if model.get_vec_normalize_env() is not None:
        model.get_vec_normalize_env().save(str(run_dir / "vecnormalize.pkl"))  # type: ignore[union-attr]
    venv.close()
    evaluation.eval_env.close()

    from lattice.report import plot_run

    plot_run(run_dir)
    video_path = None
    if video:
        from lattice.video import render_run

        video_path = render_run(run_dir, "best", episodes=1)
        if wandb_run is not None:
            import wandb

            wandb_run.log({"videos/rollout": wandb.Video(str(video_path), format="mp4")})
    summary = summarize(run_dir, config, model.num_timesteps, elapsed, model.num_timesteps - start_steps, video_path)
    if wandb_run is not None:
        wandb_run.summary.update({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        wandb_run.finish()
    return summary


def summarize(
    run_dir: Path, config: dict[str, Any], steps: int, elapsed: float, new_steps: int, video: Path | None = None
) -> dict[str, Any]:
    """Write ``summary.yml``: the final evaluation and the best one (that of ``best_model.zip``: return, success,
    energy), speed, and the video's path if one was rendered."""
    data = dict(np.load(run_dir / "evaluations.npz"))

    def evaluation(i: int) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "timesteps": int(data["timesteps"][i]),
            "return_mean": float(np.mean(data["results"][i])),
            "return_std": float(np.std(data["results"][i])),
            "episodes": len(data["results"][i]),
        }
        if "successes" in data:
            entry["success_rate"] = float(np.mean(data["successes"][i]))
        for key in ENERGY_KEYS:
            if key in data:
                entry[key.removeprefix("ep_")] = float(np.mean(data[key][i]))
        return entry

    best = int(np.flatnonzero(data["timesteps"] == load_yaml(run_dir / "best_model.yml")["timesteps"])[0])
    summary: dict[str, Any] = {
        "status": "finished",
        "algo": config["algo"],
        "noise": config["noise"],
        "env": config["env"],
        "seed": config["seed"],
        "timesteps": int(steps),
        "final_eval": evaluation(len(data["timesteps"]) - 1),
        "best_eval": evaluation(best),
        "train_seconds": round(elapsed, 1),
        "steps_per_second": round(new_steps / max(elapsed, 1e-9), 1),
    }
    if video is not None:
        summary["video"] = str(video.relative_to(run_dir))
    (run_dir / "summary.yml").write_text(yaml.safe_dump(summary, sort_keys=False))
    return summary


def start_run(
    config: dict[str, Any],
    log_dir: Path,
    args: dict[str, Any] | None = None,
    run_dir: Path | None = None,
    **train_kwargs: Any,
) -> tuple[Path, dict[str, Any]]:
    """Check that the config builds, create a new run folder, record what runs, and train.

    :param run_dir: Use this (new) folder instead of the next ``log_dir/<algo>/<env>_<N>`` (sweeps name trials).
    :return: The run folder and the summary.
    """
    check_buildable(config)
    if run_dir is None:
        run_dir = new_run_dir(log_dir, config["algo"], config["env"])
    else:
        run_dir.mkdir(parents=True)  # never into an existing folder
    dump_config(config, run_dir / "config.yml")
    (run_dir / "args.yml").write_text(yaml.safe_dump(args or {}, sort_keys=False))
    (run_dir / "command.txt").write_text(_command_line() + "\n")
    (run_dir / "versions.yml").write_text(yaml.safe_dump(package_versions(), sort_keys=False))
    print(f"run folder: {run_dir}", flush=True)
    return run_dir, train(config, run_dir, **train_kwargs)


def finished_summary(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``summary.yml`` if it says the run finished, else None (still running, killed, or stopped)."""
    path = run_dir / "summary.yml"
    summary = load_yaml(path) if path.is_file() else None
    return summary if summary and summary.get("status") == "finished" else None


def resume_run(run_dir: Path, **train_kwargs: Any) -> dict[str, Any]:
    """Continue an interrupted run in its folder from its newest checkpoint, to the same total.

    Raises ConfigError for a folder that is missing, not a run folder, or already finished.
    """
    if not run_dir.is_dir():
        raise ConfigError(f"--resume {run_dir}: no such folder")
    if not (run_dir / "config.yml").is_file() or not (run_dir / "command.txt").is_file():
        raise ConfigError(f"--resume {run_dir}: not a run folder of experiments/run.py (no config.yml / command.txt)")
    if finished_summary(run_dir) is not None:
        raise ConfigError(f"--resume {run_dir}: this run already finished; start a new run instead")
    config = validate(load_yaml(run_dir / "config.yml"))
    checkpoint = latest_checkpoint(run_dir, config["algo"], config["normalize"] is not False)
    with (run_dir / "command.txt").open("a") as f:
        f.write(_command_line() + "\n")
    where = f"checkpoint at {checkpoint[0]:,} steps" if checkpoint else "the start (no checkpoint was saved)"
    print(f"resuming {run_dir} from {where}", flush=True)
    return train(config, run_dir, resuming=True, resume_from=checkpoint, **train_kwargs)


def _command_line() -> str:
    return shlex.join([Path(sys.executable).name, *sys.argv])
