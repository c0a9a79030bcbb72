"""One training run: a resolved config → envs, model, callbacks → a run folder (``lattice.experiments.rundir``);
and resuming one.

``train`` reads as its three phases: ``_build`` (envs, the model or its checkpoint, callbacks), ``_learn`` (SB3's
``learn``, with what an interruption leaves behind) and ``_finish`` (the final evaluation, models, figures, video,
summary). ``start_run`` creates the folder first; ``resume_run`` continues from the newest usable checkpoint to
the same total, appending to the logs.
"""

from __future__ import annotations

import functools
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import CSVOutputFormat, Logger, TensorBoardOutputFormat
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

from lattice.callbacks import EpisodicNoiseCallback
from lattice.envs import ENERGY_KEYS
from lattice.experiments import rundir
from lattice.experiments.build import check_sizes
from lattice.experiments.callbacks import (
    EnergyEvalCallback,
    EpisodeEnergyCallback,
    RunCheckpointCallback,
    RunProgressBarCallback,
    StopSignalCallback,
    UpdateSizeCallback,
)
from lattice.experiments.checkpoints import choose_checkpoint, set_aside_after, trained_config
from lattice.experiments.config import ALGOS, RunConfig, algo_kwargs, check_device, task_env, validate
from lattice.experiments.dotted import config_differences
from lattice.experiments.errors import ConfigError, RunFolderError
from lattice.experiments.lock import writer_lock
from lattice.experiments.process import Terminated, available_cores, leave_stop_signals_to_parent
from lattice.experiments.rundir import RunDir
from lattice.experiments.zoo import write_zoo_config
from lattice.policies import load_model


class RunStopped(KeyboardInterrupt):
    """A run stopped on request (Ctrl-C, or SIGTERM), after saving what it could; ``error.txt`` says how to resume.

    :param run_dir: The run folder.
    :param why: ``interrupted (Ctrl-C)`` or ``terminated by SIGTERM``.
    :param exit_code: What the command exits with: 130 for Ctrl-C, 143 for SIGTERM (128 + the signal's number).
    """

    def __init__(self, run_dir: Path, why: str, exit_code: int):
        super().__init__(why)
        self.run_dir, self.why, self.exit_code = run_dir, why, exit_code


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


def env_info_keywords(config: RunConfig | Mapping[str, Any]) -> tuple[str, ...]:
    """The episode keys (energy, success) the task's env reports, for the Monitor CSV columns."""
    env = task_env(config)
    try:
        env.reset(seed=0)  # checks the reward weights against the env's terms
        return env.info_keywords
    finally:
        env.close()


class InProcessVecEnv(DummyVecEnv):
    """SB3's DummyVecEnv with the rewards as SubprocVecEnv returns them: as the envs give them (Python floats:
    float64), not rounded to float32. VecNormalize's running returns, and so a run with ``norm_reward``, are then the
    same whether its envs run in this process or in worker processes. (Observations are the same where an env gives
    them in its observation space's dtype, as gymnasium's env checker asks: DummyVecEnv stores them in that dtype,
    SubprocVecEnv stacks them as given.)"""

    def __init__(self, env_fns: list[Callable[[], gym.Env]]):
        super().__init__(env_fns)
        self.buf_rews = np.zeros((self.num_envs,), dtype=np.float64)


def training_vec_env(vec_env: str, n_envs: int) -> tuple[type[DummyVecEnv] | type[SubprocVecEnv], str]:
    """Where a run's training envs run (its ``vec_env`` setting resolved), and the line that says so.

    One env runs in this process. More run in worker processes (``subproc``: SubprocVecEnv) or in this process
    (``dummy``: ``InProcessVecEnv``); ``auto`` chooses this process when the run has one core
    (``process.available_cores``), where worker processes would only add their cost: passing actions and
    observations between processes at every step (0.4-0.6 ms per step with the hand's 16 MyoSuite envs on one
    core), and a start-up per run and per resume, each worker importing the env's packages (45-50 s for those).

    :param vec_env: ``auto``, ``dummy`` or ``subproc``.
    :param n_envs: The run's training envs.
    :return: The VecEnv class, and e.g. ``16 envs in this process (vec_env auto: 1 core)``.
    """
    if n_envs == 1:
        return DummyVecEnv, "1 env in this process"
    why = f"vec_env {vec_env}"
    if vec_env == "auto":
        cores = available_cores()
        vec_env = "dummy" if cores == 1 else "subproc"
        why += f": {cores} core{'s' if cores > 1 else ''}"
    if vec_env == "dummy":
        return InProcessVecEnv, f"{n_envs} envs in this process ({why})"
    return SubprocVecEnv, f"{n_envs} envs in {n_envs} worker processes ({why})"


def make_vec_envs(
    config: RunConfig | Mapping[str, Any],
    seed: int,
    n_envs: int,
    monitor_dir: Path | None,
    info_keywords: tuple[str, ...],
    append: bool = False,
    vec_env_cls: type[DummyVecEnv] | type[SubprocVecEnv] = DummyVecEnv,
) -> VecEnv:
    """``n_envs`` envs of the task in ``vec_env_cls`` (``training_vec_env`` chooses it for the training envs),
    worker i seeded ``seed + i``, with Monitor recording ``info_keywords`` (see ``env_info_keywords``) per
    episode."""
    thunk = functools.partial(task_env, config)
    if issubclass(vec_env_cls, SubprocVecEnv):  # each env in a worker process of its own
        thunk = functools.partial(_env_worker, thunk)
    return make_vec_env(
        thunk,
        n_envs=n_envs,
        seed=seed,
        monitor_dir=None if monitor_dir is None else str(monitor_dir),
        monitor_kwargs=dict(info_keywords=info_keywords, override_existing=not append),
        vec_env_cls=vec_env_cls,
    )


def _env_worker(make: Any) -> Any:
    """Called in an env worker process (SubprocVecEnv) to make its env; stop signals are the trainer's to handle."""
    leave_stop_signals_to_parent()
    return make()


def normalized(venv: VecEnv, config: RunConfig | Mapping[str, Any], training: bool) -> VecEnv:
    """Wrap in VecNormalize as the config says; the evaluation copy is frozen and returns raw rewards."""
    config = RunConfig.of(config)
    if config.normalize is False:
        return venv
    assert config.normalize is not True  # validation made ``normalize: true`` VecNormalize's defaults, {}
    kwargs = dict(config.normalize)
    kwargs.setdefault("gamma", config.hyperparams.get("gamma", 0.99))
    if not training:
        kwargs.update(training=False, norm_reward=False)
    return VecNormalize(venv, **kwargs)


def eval_env(config: RunConfig | Mapping[str, Any], info_keywords: tuple[str, ...]) -> VecEnv:
    """The evaluation env: one env seeded ``seed + n_envs`` (no training worker has that seed)."""
    config = RunConfig.of(config)
    venv = make_vec_envs(config, config.seed + config.n_envs, 1, None, info_keywords)
    return normalized(venv, config, training=False)


def build_model(config: RunConfig | Mapping[str, Any], env: VecEnv) -> BaseAlgorithm:
    """The algorithm with its Lattice policy, as the resolved config says."""
    config = RunConfig.of(config)
    algo_class, policy_class = ALGOS[config.algo]
    return algo_class(policy_class, env, seed=config.seed, device=config.device, **algo_kwargs(config))


def check_buildable(config: RunConfig | Mapping[str, Any]) -> None:
    """Build the model on one throwaway env so that a bad value fails here, before any folder exists; the device
    must be available, and the budget must train the model (``check_budget``)."""
    config = RunConfig.of(config)
    check_device(config.device)
    try:
        probe = task_env(config)
        probe.reset(seed=0)  # checks the reward weights against the env's terms
        check_sizes(config, probe.observation_space, probe.action_space)  # buffers that fit in this machine
        env = normalized(DummyVecEnv([lambda: probe]), config, training=True)
        model = build_model(replace(config, device="cpu"), env)
        model.env.close()  # type: ignore[union-attr]
    except (ValueError, TypeError, AssertionError, KeyError, RuntimeError) as e:
        raise ConfigError(f"Cannot build {config.algo} with noise {config.noise!r} on {config.env}: {e}") from e
    check_budget(model, config.timesteps, config.n_envs)


def check_budget(model: BaseAlgorithm, timesteps: int, n_envs: int) -> None:
    """Raise ConfigError when ``timesteps`` steps cannot train ``model`` as asked: an off-policy algorithm makes
    no update until it has collected more than ``learning_starts`` steps (of random actions), and an on-policy one
    collects whole rollouts of ``n_steps`` per env before each update, so a budget under one rollout would train a
    whole rollout anyway, more steps than asked.

    :param model: The algorithm with its settings (the number of envs it was built on does not matter).
    :param timesteps: The run's budget (all envs together).
    :param n_envs: The envs the run trains on.
    """
    name = type(model).__name__
    if isinstance(model, OffPolicyAlgorithm) and timesteps <= model.learning_starts:
        raise ConfigError(
            f"timesteps={timesteps} trains nothing: {name} makes its first update after learning_starts="
            f"{model.learning_starts} steps of random actions; set timesteps (-n) above {model.learning_starts}, "
            f"or learning_starts below {timesteps} (--hyperparams learning_starts=N)"
        )
    if isinstance(model, OnPolicyAlgorithm) and timesteps < model.n_steps * n_envs:
        rollout = model.n_steps * n_envs
        raise ConfigError(
            f"timesteps={timesteps} is less than one rollout: {name} collects n_steps x n_envs = {model.n_steps} x "
            f"{n_envs} = {rollout} steps before each update (so it would train {rollout}); set timesteps (-n) to "
            f"at least {rollout}, or lower n_steps or n_envs"
        )


def _logger(run: RunDir) -> Logger:
    """CSV (appending) and tensorboard output in the run folder; evaluations print their own line."""
    csv = AppendingCSVOutputFormat(str(run / rundir.PROGRESS))
    return Logger(str(run.path), [csv, TensorBoardOutputFormat(str(run / rundir.TENSORBOARD))])


def start_wandb(run: RunDir, config: RunConfig | Mapping[str, Any], project: str, entity: str | None) -> Any:
    """Start (or continue, for a resumed run) a wandb run that syncs the tensorboard metrics.

    Without an API key wandb runs offline (``WANDB_MODE=offline``; upload later with ``wandb sync``) instead
    of failing; a mode set by the user is kept.
    """
    import wandb

    config = RunConfig.of(config)
    if "WANDB_MODE" not in os.environ and not (os.environ.get("WANDB_API_KEY") or _netrc_has_wandb()):
        os.environ["WANDB_MODE"] = "offline"
        print("wandb: no API key found, logging offline (upload later with `wandb sync`)", flush=True)
    id_file = run / rundir.WANDB_ID
    run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
    id_file.write_text(run_id)
    return wandb.init(
        project=project,
        entity=entity,
        id=run_id,
        resume="allow",
        name=f"{config.algo}-{config.noise}-{run.path.name}",
        config=config.as_dict(),
        dir=str(run.path),
        sync_tensorboard=True,
    )


def _netrc_has_wandb() -> bool:
    import netrc

    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


@dataclass
class _Session:
    """What one stretch of training (a run, or the part of it after a resume) works with."""

    run: RunDir
    config: RunConfig
    model: BaseAlgorithm
    venv: VecEnv
    evaluation: EnergyEvalCallback
    checkpoints: RunCheckpointCallback
    start_steps: int
    wandb_run: Any


def train(
    config: RunConfig | Mapping[str, Any],
    run_dir: Path,
    progress_bar: bool = True,
    wandb_project: str | None = None,
    wandb_entity: str | None = None,
    video: bool = False,
    resuming: bool = False,
    resume_from: tuple[int, dict[str, Path]] | None = None,
    after_eval: BaseCallback | None = None,
) -> dict[str, Any]:
    """Train as ``config`` says into ``run_dir`` (created by the caller), or continue from a checkpoint.

    :param config: A resolved config (``lattice.experiments.config.resolve_run_config``, or its dict).
    :param run_dir: The run folder; ``config.yml`` and the rest are written here.
    :param progress_bar: Show a progress bar (SB3's, counting to the step count the run ends at).
    :param wandb_project: Log to wandb (tensorboard sync, videos) under this project; None: no wandb.
    :param wandb_entity: wandb entity (team or user).
    :param video: Render a rollout of the best model to ``videos/`` at the end.
    :param resuming: Continue a run in ``run_dir``: append to its logs.
    :param resume_from: (steps, files) of the checkpoint to continue from (``checkpoints.choose_checkpoint``); None
        with ``resuming``: start over (no checkpoint file had been saved), still appending to the logs.
    :param after_eval: A callback run after each evaluation (SB3's ``callback_after_eval``; e.g. a tuner's report);
        an exception it raises stops the run as any error does.
    :return: The summary (also written to ``summary.yml``).
    """
    config = RunConfig.of(config)
    session = _build(RunDir(run_dir), config, resuming, resume_from, wandb_project, wandb_entity, after_eval)
    try:
        elapsed = _learn(session, progress_bar)
        return _finish(session, elapsed, video)
    except BaseException:
        _stop_env_workers(session.venv)
        raise


def _stop_env_workers(venv: VecEnv) -> None:
    """End the env worker processes of a run that stops on an exception. They ignore SIGINT and SIGTERM (the
    training process handles those) and wait on their pipes, so without this the interpreter's exit, which
    terminates and then joins them, would wait forever."""
    if isinstance(venv, SubprocVecEnv) and not venv.closed:
        for process in venv.processes:
            process.kill()
            process.join()
        venv.closed = True


def _build(
    run: RunDir,
    config: RunConfig,
    resuming: bool,
    resume_from: tuple[int, dict[str, Path]] | None,
    wandb_project: str | None,
    wandb_entity: str | None,
    after_eval: BaseCallback | None = None,
) -> _Session:
    """Envs, the model (new, or loaded from the checkpoint), the evaluation and checkpoint callbacks, the logger."""
    start_steps = 0 if resume_from is None else resume_from[0]
    wandb_run = start_wandb(run, config, wandb_project, wandb_entity) if wandb_project else None
    info_keywords = env_info_keywords(config)
    columns = run.monitor_columns() if resuming else None
    if columns is not None:  # a run begun by an older version keeps its monitor CSVs' columns
        info_keywords = tuple(key for key in info_keywords if key in columns)
    vec_env_cls, where = training_vec_env(config.vec_env, config.n_envs)
    print(where, flush=True)
    # A resumed run draws new episodes: its workers are seeded past the ones of the first part.
    seed = config.seed + start_steps
    venv = make_vec_envs(config, seed, config.n_envs, run.path, info_keywords, resuming, vec_env_cls)
    try:
        return _build_on(run, config, venv, info_keywords, resuming, resume_from, wandb_run, after_eval)
    except BaseException:
        _stop_env_workers(venv)
        raise


def _build_on(
    run: RunDir,
    config: RunConfig,
    venv: VecEnv,
    info_keywords: tuple[str, ...],
    resuming: bool,
    resume_from: tuple[int, dict[str, Path]] | None,
    wandb_run: Any,
    after_eval: BaseCallback | None = None,
) -> _Session:
    """``_build``'s part after the training envs exist: evaluation, the model, checkpoints, the logger."""
    start_steps = 0 if resume_from is None else resume_from[0]
    evaluation = EnergyEvalCallback(
        eval_env(config, info_keywords),
        run,
        eval_freq=config.eval_freq,
        n_eval_episodes=config.eval_episodes,
        env_id=config.env,
        callback_after_eval=after_eval,
    )
    if resume_from is None:
        model = build_model(config, normalized(venv, config, training=True))
    else:
        model = _load_checkpoint(config, venv, resume_from)
    # saved with every model (as plain values, which the model's zip stores as JSON): what it was trained with
    setattr(model, rundir.CONFIG_ATTRIBUTE, config.as_dict())
    if resuming:
        set_aside_after(run, start_steps)
        if (run / rundir.EVALUATIONS).exists():
            evaluation.restore(run / rundir.EVALUATIONS, start_steps)  # the best return: that of best_model.yml
    policy = ALGOS[config.algo][1]
    write_zoo_config(run, config, f"{policy.__module__}.{policy.__qualname__}")
    model.set_logger(_logger(run))
    checkpoints = RunCheckpointCallback(config.save_freq, run)
    return _Session(run, config, model, venv, evaluation, checkpoints, start_steps, wandb_run)


def _load_checkpoint(config: RunConfig, venv: VecEnv, checkpoint: tuple[int, dict[str, Path]]) -> BaseAlgorithm:
    """The model of a checkpoint on ``venv``, with its VecNormalize statistics and replay buffer, reseeded."""
    steps, files = checkpoint
    if "vecnormalize" in files:
        venv = VecNormalize.load(str(files["vecnormalize"]), venv)
        venv.training = True
    model = load_model(ALGOS[config.algo][0], files["model"], env=venv, device=config.device)  # 0.2's models too
    model.set_random_seed(config.seed + steps)  # load() reseeded everything with the first seed
    if isinstance(model, OffPolicyAlgorithm) and "replay_buffer" in files:
        model.load_replay_buffer(files["replay_buffer"])
    return model


def _learn(session: _Session, progress_bar: bool) -> float:
    """SB3's ``learn`` to the run's total; returns the seconds it took.

    Ctrl-C and SIGTERM (``lattice.experiments.process.stop_signals_as_interrupt``) save a checkpoint (where one is a
    state of the uninterrupted run), write ``error.txt`` and raise ``RunStopped``; any other error is recorded in
    ``error.txt`` and raised on."""
    model, config = session.model, session.config
    callbacks = CallbackList(
        [
            StopSignalCallback(),  # a stop whose exception a finalizer swallowed
            EpisodicNoiseCallback(),  # a new colored-noise sequence per episode (no-op for the other noises)
            EpisodeEnergyCallback(),
            UpdateSizeCallback(),
            session.evaluation,
            session.checkpoints,
            *([RunProgressBarCallback()] if progress_bar else []),  # SB3's own would count past 100%
        ]
    )
    start = time.time()
    try:
        model.learn(
            config.timesteps - session.start_steps,
            callback=callbacks,
            reset_num_timesteps=session.start_steps == 0,  # a loaded checkpoint continues its step count
        )
    except KeyboardInterrupt as e:
        saved = None
        if model.num_timesteps > session.start_steps:
            saved = session.checkpoints.save_interrupted()  # keep what was trained, to resume from
        why = str(e) or "interrupted (Ctrl-C)"  # Terminated, and a sweep worker's stops, say what they are
        session.run.record_stop(model.num_timesteps, why, saved)
        model.logger.close()
        raise RunStopped(session.run.path, why, 143 if isinstance(e, Terminated) else 130) from e
    except BaseException as e:
        session.run.record_error(model.num_timesteps, e, "".join(traceback.format_exception(e)))  # for reports
        model.logger.close()
        raise
    (session.run / rundir.ERROR).unlink(missing_ok=True)  # an earlier attempt's error, now resumed past
    return time.time() - start


def _finish(session: _Session, elapsed: float, video: bool) -> dict[str, Any]:
    """The final evaluation (so that the summary describes the final policy), the final model and statistics, the
    run's figures, the video, ``summary.yml``."""
    run, model, evaluation = session.run, session.model, session.evaluation
    if not evaluation.evaluations_timesteps or evaluation.evaluations_timesteps[-1] != model.num_timesteps:
        evaluation.evaluate()
    model.logger.close()
    model.save(run / rundir.FINAL_MODEL)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        vec_normalize.save(str(run / rundir.VECNORMALIZE))
    session.venv.close()
    evaluation.eval_env.close()

    from lattice.experiments.report import plot_run

    plot_run(run.path)
    video_path = None
    if video:
        from lattice.experiments.video import render_run

        try:
            video_path = render_run(run.path, "best", episodes=1)
        except Exception as e:  # checked up front (check_renderable): the trained run is not lost over a video
            print(f"warning: no video: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        if session.wandb_run is not None and video_path is not None:
            import wandb

            session.wandb_run.log({"videos/rollout": wandb.Video(str(video_path), format="mp4")})
    new_steps = model.num_timesteps - session.start_steps
    summary = summarize(run.path, session.config, model.num_timesteps, elapsed, new_steps, video_path)
    if session.wandb_run is not None:
        session.wandb_run.summary.update({k: v for k, v in summary.items() if isinstance(v, (int, float))})
        session.wandb_run.finish()
    return summary


def summarize(
    run_dir: Path,
    config: RunConfig | Mapping[str, Any],
    steps: int,
    elapsed: float,
    new_steps: int,
    video: Path | None = None,
) -> dict[str, Any]:
    """Write ``summary.yml``: the final evaluation and the best one (that of ``best_model.zip``: return, success,
    energy), speed, and the video's path if one was rendered."""
    config = RunConfig.of(config)
    run = RunDir(run_dir)
    data = run.evaluations()

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

    best = int(np.flatnonzero(data["timesteps"] == run.best_record()["timesteps"])[0])
    summary: dict[str, Any] = {
        "status": "finished",
        "algo": config.algo,
        "noise": config.noise,
        "env": config.env,
        "seed": config.seed,
        "timesteps": int(steps),
        "final_eval": evaluation(len(data["timesteps"]) - 1),
        "best_eval": evaluation(best),
        "train_seconds": round(elapsed, 1),
        "steps_per_second": round(new_steps / max(elapsed, 1e-9), 1),
    }
    if video is not None:
        summary["video"] = str(video.relative_to(run_dir))
    rundir.atomic_write_text(run / rundir.SUMMARY, yaml.safe_dump(summary, sort_keys=False))
    return summary


def start_run(
    config: RunConfig | Mapping[str, Any],
    log_dir: Path,
    args: dict[str, Any] | None = None,
    run_dir: Path | None = None,
    **train_kwargs: Any,
) -> tuple[Path, dict[str, Any]]:
    """Check the config (it builds on an available device and, with ``video``, the task renders), create a new run
    folder, record what runs, and train, holding the folder's writer lock (``lock.writer_lock``) throughout.

    :param run_dir: Use this (new) folder instead of the next ``log_dir/<algo>/<env>_<N>`` (sweeps name trials).
    :return: The run folder and the summary.
    """
    config = RunConfig.of(config)
    check_buildable(config)
    if train_kwargs.get("video"):
        from lattice.experiments.video import check_renderable

        check_renderable(config)
    try:
        if run_dir is None:
            run = RunDir.create(log_dir, config.algo, config.env)
        else:
            run_dir.mkdir(parents=True)  # never into an existing folder
            run = RunDir(run_dir)
    except OSError as e:
        raise ConfigError(f"Cannot create a run folder in {run_dir or log_dir}: {e.strerror or e}") from None
    with writer_lock(run.path):
        run.record_start(config.as_dict(), args or {})
        print(f"run folder: {run.path}", flush=True)
        return run.path, train(config, run.path, **train_kwargs)


def resume_run(run_dir: Path, **train_kwargs: Any) -> dict[str, Any]:
    """Continue an interrupted run in its folder from its newest usable checkpoint, to the same total, holding the
    folder's writer lock throughout.

    A checkpoint is usable when its files are all there, readable and finite (``checkpoints.choose_checkpoint``); the
    newer ones are set aside, each with a warning on stderr, and the run saves its next checkpoints in their place.
    The checkpoint's model must have been trained with the config that ``config.yml`` holds now: an edit since is
    refused, naming the settings that differ. Only a run without any checkpoint file starts over, with
    ``config.yml`` as it is.

    Raises (before anything is written) RunFolderError for a folder that is missing, not a run folder, in use by
    another process, already finished, or with checkpoint files but no usable checkpoint; ConfigError for a config
    edited since its checkpoint.
    """
    run = RunDir(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"--resume {run_dir}: no such folder")
    if not run.is_run():
        raise RunFolderError(f"--resume {run_dir}: not a run folder of lattice-train (no config.yml / command.txt)")
    with writer_lock(run.path):
        if run.finished_summary() is not None:
            raise RunFolderError(f"--resume {run_dir}: this run already finished; start a new run instead")
        config = RunConfig.of(validate(run.config()))
        check_device(config.device)
        if train_kwargs.get("video"):
            from lattice.experiments.video import check_renderable

            check_renderable(config)
        replay_buffer = issubclass(ALGOS[config.algo][0], OffPolicyAlgorithm)
        choice = choose_checkpoint(run, config.normalize is not False, replay_buffer)
        checkpoint = choice.checkpoint
        if checkpoint is not None:
            _check_unedited(run, config, checkpoint)
        # what follows writes into the folder
        choice.set_aside(functools.partial(print, file=sys.stderr, flush=True))
        run.record_resume()
        where = f"checkpoint at {checkpoint[0]:,} steps" if checkpoint else "the start (no checkpoint was saved)"
        print(f"resuming {run_dir} from {where}", flush=True)
        return train(config, run_dir, resuming=True, resume_from=checkpoint, **train_kwargs)


def _check_unedited(run: RunDir, config: RunConfig, checkpoint: tuple[int, dict[str, Path]]) -> None:
    """Raise ConfigError if ``config`` (``config.yml`` now) is not what the checkpoint's model was trained with."""
    steps, files = checkpoint
    trained = trained_config(files["model"])
    if trained is None:  # saved by a version that did not record it: nothing to compare with
        return
    try:
        # as this version records it: 0.2 recorded every noise's parameters, and noise_period for every noise
        trained = validate(trained)
    except ConfigError:
        pass  # compared as recorded: any difference is named below
    differences = config_differences(config.as_dict(), trained)
    if differences:
        raise ConfigError(
            f"{run / rundir.CONFIG} was edited after the checkpoint at {steps:,} steps was trained "
            f"({'; '.join(differences)}); a resume continues that model as it was trained: undo the edit, or start "
            f"a new run with --config {run / rundir.CONFIG}"
        )
