"""SB3 callbacks of an experiment run: energy of training episodes, evaluation with energy, checkpoints, a
progress bar that ends at 100%, and a warning when PPO's updates stay too large.

Everything written here survives a SIGKILL: each file (``evaluations.npz``, the best model, every checkpoint
file) is written under a temporary name and renamed into place (``lattice.experiments.rundir``), so no file is ever
half-written.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback, ProgressBarCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.type_aliases import TrainFreq, TrainFrequencyUnit
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from lattice.envs import ENERGY_KEYS, SUCCESS
from lattice.experiments import checkpoints, rundir
from lattice.experiments.process import pending_stop
from lattice.experiments.rundir import RunDir, atomic_savez, atomic_write_text, temporary
from lattice.experiments.zoo import publish_zoo_view

if TYPE_CHECKING:
    from stable_baselines3.common.type_aliases import PolicyPredictor

KEPT_REPLAY_BUFFERS = 2  # the newest checkpoint's, and the one before it in case the newest cannot be read


class NonFiniteModel(RuntimeError):
    """Training diverged: the model's weights (or its normalisation statistics) hold NaN or inf, so no checkpoint
    of it is saved and the run stops (the error goes to ``error.txt``)."""


@dataclass
class Episodes:
    """What the episodes of one evaluation gave: per episode, the return, the length, success (if the env reports
    it) and each energy key the env reports (``lattice.envs.ENERGY_KEYS``)."""

    returns: list[float]
    lengths: list[int]
    successes: list[bool] = field(default_factory=list)
    energy: dict[str, list[float]] = field(default_factory=dict)

    def line(self) -> str:
        """One line: return mean ± sd, success rate, each energy's mean."""
        text = f"return {np.mean(self.returns):9.2f} ± {np.std(self.returns):7.2f}"
        if self.successes:
            text += f" | success {np.mean(self.successes):4.0%}"
        for key, values in self.energy.items():
            text += f" | {key.removeprefix('ep_')} {np.mean(values):.4f}"
        return text


def evaluate_episodes(
    model: BaseAlgorithm | PolicyPredictor, env: VecEnv, n_episodes: int, deterministic: bool = True
) -> Episodes:
    """Run ``n_episodes`` episodes of ``model`` on ``env`` (SB3's ``evaluate_policy``) and collect, from the
    ``info`` of each episode's last step, its success and energy (written there by ``lattice.envs.EpisodeEnergy``).

    :param model: A model, or anything with its ``predict`` (e.g. ``chance.ChancePolicy``).
    """
    successes: list[bool] = []
    energy: dict[str, list[float]] = {}

    def collect(locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        info = locals_["info"]
        if locals_["done"] and "episode" in info:  # Monitor's summary: the episode really ended
            if SUCCESS in info:
                successes.append(bool(info[SUCCESS]))
            for key in ENERGY_KEYS:
                if key in info:
                    energy.setdefault(key, []).append(float(info[key]))

    returns, lengths = evaluate_policy(
        model,
        env,
        n_eval_episodes=n_episodes,
        deterministic=deterministic,
        return_episode_rewards=True,
        callback=collect,
    )
    assert isinstance(returns, list) and isinstance(lengths, list)
    return Episodes([float(r) for r in returns], [int(n) for n in lengths], successes, energy)


class StepGrid:
    """Due each time the step count passes a multiple of ``every`` (all envs together), also after a resume.

    :param every: Environment steps between two due points.
    """

    def __init__(self, every: int):
        self.every = every
        self.next = every

    def start(self, steps: int) -> None:
        """Continue from ``steps`` (the first due point after it)."""
        self.next = (steps // self.every + 1) * self.every

    def due(self, steps: int) -> bool:
        """Whether a due point was reached (then the next one is armed)."""
        if steps < self.next:
            return False
        self.start(steps)
        return True


def learning_end(model: BaseAlgorithm, start: int, total: int) -> int | None:
    """The step count at which SB3's ``learn`` from ``start`` to ``total`` steps ends: it stops only between
    collections, so it rounds the budget up to whole ones.

    On-policy algorithms collect rollouts of ``n_steps`` per env; off-policy ones collect ``train_freq`` steps per
    env between their updates (counted from ``start``: a resumed run begins a new collection).

    :param model: The algorithm, set up (``n_envs`` known).
    :param start: The step count at which ``learn`` begins.
    :param total: The step count ``learn`` trains to.
    :return: The step count at the end, or None where it depends on episode lengths (a ``train_freq`` in episodes).
    """
    if isinstance(model, OnPolicyAlgorithm):
        collection = model.n_steps * model.n_envs
    elif isinstance(model, OffPolicyAlgorithm) and isinstance(model.train_freq, TrainFreq):  # converted at setup
        if model.train_freq.unit != TrainFrequencyUnit.STEP:
            return None
        collection = model.train_freq.frequency * model.n_envs
    else:
        return None
    return start + -(-(total - start) // collection) * collection  # ceil: whole collections


class RunProgressBarCallback(ProgressBarCallback):
    """SB3's progress bar counting to the step count the run really ends at (``learning_end``: SB3 trains whole
    rollouts, so a budget of 50,000 steps in rollouts of 512 ends at 50,176), so that it ends at 100% and never past
    it. Where the end cannot be known in advance (a ``train_freq`` in episodes) it counts to the budget and stops
    there (capped at 100%) while the last collection finishes."""

    def _on_training_start(self) -> None:
        from tqdm import TqdmExperimentalWarning
        from tqdm.rich import tqdm  # SB3's bar (installed with the experiments extra)

        start, total = self.model.num_timesteps, self.locals["total_timesteps"]
        end = learning_end(self.model, start, total)
        with warnings.catch_warnings():  # SB3 silences it process-wide at import; here only around the bar
            warnings.simplefilter("ignore", TqdmExperimentalWarning)
            self.pbar = tqdm(total=(total if end is None else end) - start)  # this stretch's steps, as SB3 counts

    def _on_step(self) -> bool:
        assert self.pbar.total is not None
        self.pbar.update(min(self.training_env.num_envs, self.pbar.total - self.pbar.n))
        return True


class EpisodeEnergyCallback(BaseCallback):
    """Log the per-episode energy of training episodes (``rollout/ep_effort``, ...; see ``lattice.envs``)."""

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:  # an episode ended in this env (Monitor's summary)
                for key in ENERGY_KEYS:
                    if key in info:
                        self.logger.record_mean(f"rollout/{key}", info[key])
        return True


class EnergyEvalCallback(EvalCallback):
    """SB3's ``EvalCallback`` that also records per-episode energy and prints one line per evaluation.

    ``evaluations.npz`` holds SB3's arrays (``timesteps``, ``results``, ``ep_lengths``, ``successes``) plus one
    array per energy key (``ep_effort``, ``ep_act_sq``, ``ep_action_sq``: evaluations × episodes). Training
    normalisation statistics are copied to the evaluation env (frozen there) before each evaluation.

    :param eval_env: The evaluation env (its own seed; a frozen VecNormalize when training normalises).
    :param run: The run folder: ``evaluations.npz``, ``best_model.zip`` and ``best_vecnormalize.pkl`` go there.
    :param eval_freq: Evaluate at step 0 (a new run's untrained policy), then each time the step count passes a
        multiple of ``eval_freq`` (all envs together), so a resumed run keeps the same grid of evaluation steps; a
        multiple reached at or past the budget is left to the final evaluation (``evaluate()`` once training ends),
        so the last policy is evaluated once.
    :param n_eval_episodes: Episodes per evaluation.
    :param env_id: The env's id: each new best model is also published under rl-baselines3-zoo's names for it
        (None: not).
    :param callback_after_eval: SB3's: called after each evaluation (its ``parent`` is this callback); returning
        False stops training.
    :param verbose: 1: one line per evaluation.
    """

    def __init__(
        self,
        eval_env: VecEnv,
        run: RunDir,
        eval_freq: int,
        n_eval_episodes: int,
        env_id: str | None = None,
        callback_after_eval: BaseCallback | None = None,
        verbose: int = 1,
    ):
        super().__init__(
            eval_env,
            callback_after_eval=callback_after_eval,
            n_eval_episodes=n_eval_episodes,
            eval_freq=eval_freq,
            log_path=str(run.path),
            best_model_save_path=str(run.path),
            deterministic=True,
            verbose=verbose,
        )
        self.run = run
        self.env_id = env_id
        self.evaluations_energy: dict[str, list[list[float]]] = {key: [] for key in ENERGY_KEYS}
        self._start_time = time.time()
        self._start_steps = 0
        self._total = 0  # the step count SB3's learn trains to (set at the training start)
        self._grid = StepGrid(eval_freq)

    def restore(self, path: Path, up_to: int) -> None:
        """Continue the evaluations of ``path`` (a previous ``evaluations.npz``) up to step ``up_to``."""
        data = dict(np.load(path))
        keep = data["timesteps"] <= up_to
        self.evaluations_timesteps = data["timesteps"][keep].tolist()
        self.evaluations_results = data["results"][keep].tolist()
        self.evaluations_length = data["ep_lengths"][keep].tolist()
        if "successes" in data:
            self.evaluations_successes = data["successes"][keep].tolist()
        for key in ENERGY_KEYS:
            if key in data:
                self.evaluations_energy[key] = data[key][keep].tolist()
        # The best saved model's return (not the best kept evaluation's: a kill may have come before it was saved)
        self.best_mean_reward = float(self.run.best_record().get("return_mean", -np.inf))

    def _on_training_start(self) -> None:
        self._start_time, self._start_steps = time.time(), self.model.num_timesteps
        self._grid.start(self.model.num_timesteps)
        self._total = int(self.locals["total_timesteps"])
        if self.model.num_timesteps == 0 and not self.evaluations_timesteps:
            # The untrained policy too: every curve starts from where its setting began, so a reader can tell a
            # policy that learned to spend less energy from one that moved little from the start.
            self.evaluate()

    def _on_step(self) -> bool:
        if not self._grid.due(self.num_timesteps):
            return True
        # Past the budget, SB3 only finishes the current collection and its update: that policy, the final one, is
        # evaluated once, by the caller's final ``evaluate()``, at the step count where training ends.
        return True if self.num_timesteps >= self._total else self.evaluate()

    def evaluate(self) -> bool:
        """Evaluate now, log, save ``evaluations.npz`` and the best model; returns whether to continue."""
        if self.model.get_vec_normalize_env() is not None:
            sync_envs_normalization(self.training_env, self.eval_env)
        episodes = evaluate_episodes(self.model, self.eval_env, self.n_eval_episodes, self.deterministic)
        self.evaluations_timesteps.append(self.num_timesteps)
        self.evaluations_results.append(episodes.returns)
        self.evaluations_length.append(episodes.lengths)
        arrays: dict[str, Any] = dict(
            timesteps=self.evaluations_timesteps, results=self.evaluations_results, ep_lengths=self.evaluations_length
        )
        if episodes.successes:
            self.evaluations_successes.append(episodes.successes)
            arrays["successes"] = self.evaluations_successes
        for key, values in episodes.energy.items():
            self.evaluations_energy[key].append(values)
            arrays[key] = self.evaluations_energy[key]
        atomic_savez(self.run.path / rundir.EVALUATIONS, **arrays)

        mean_return = float(np.mean(episodes.returns))
        self.last_mean_reward = mean_return
        self.logger.record("eval/mean_reward", mean_return)
        self.logger.record("eval/mean_ep_length", float(np.mean(episodes.lengths)))
        if episodes.successes:
            self.logger.record("eval/success_rate", float(np.mean(episodes.successes)))
        for key, values in episodes.energy.items():
            self.logger.record(f"eval/{key}", float(np.mean(values)))
        line = f"eval {self.num_timesteps:>10,d} steps | {episodes.line()}"
        if self.num_timesteps > self._start_steps:
            speed = (self.num_timesteps - self._start_steps) / max(time.time() - self._start_time, 1e-9)
            line += f" | {speed:,.0f} steps/s"
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        if self.verbose:
            print(line, flush=True)

        if mean_return > self.best_mean_reward:
            self.best_mean_reward = mean_return
            self._save_best(mean_return)
        return self._on_event()  # SB3's callback_after_eval (True without one)

    def _save_best(self, mean_return: float) -> None:
        """``best_model.zip``, its ``best_vecnormalize.pkl`` and ``best_model.yml`` (which evaluation it was); then
        rl-baselines3-zoo's view of them (see ``lattice.experiments.rundir``)."""
        model, stats = self.run / rundir.BEST_MODEL, self.run / rundir.BEST_VECNORMALIZE
        self.model.save(temporary(model))
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            vec_normalize.save(str(temporary(stats)))
            os.replace(temporary(stats), stats)
        os.replace(temporary(model), model)
        record = {"timesteps": int(self.num_timesteps), "return_mean": mean_return}
        atomic_write_text(self.run / rundir.BEST_RECORD, yaml.safe_dump(record))
        if self.env_id is not None:
            publish_zoo_view(self.run, self.env_id)


class RunCheckpointCallback(CheckpointCallback):
    """Checkpoints (model, VecNormalize and, off-policy, the replay buffer) that a kill cannot leave half-written.

    Each file is written under a temporary name and renamed; the model's ``.zip`` is renamed last, so a checkpoint
    whose model file exists is complete. Only the two newest replay buffers are kept: they are large (SAC's are
    hundreds of MB), and a resume needs the newest, or the one before it when the newest checkpoint is damaged.
    File names are SB3's (``rl_model_<steps>_steps.zip``, ...).

    A checkpoint file is never written over (``save`` raises ``FileExistsError``: a resume sets aside every
    checkpoint after the one it continues from), and a model that holds NaN or inf is not saved: ``save`` raises
    ``NonFiniteModel``, so the run stops and the newest checkpoint stays the last finite one.

    On-policy algorithms (PPO, RecurrentPPO) update once per rollout, after collecting it. A checkpoint taken
    inside a rollout would hold a policy that has not learnt from steps it already counts, and a run resumed from
    it would collect its rollouts off the uninterrupted run's grid (ending at a different step count). So they
    are checkpointed between rollouts, after the update: at the first rollout start (or the end of training)
    past each multiple of ``save_freq``. Off-policy algorithms are checkpointed at the step itself.

    :param save_freq: Save each time the step count passes a multiple of ``save_freq`` (all envs together).
    :param run: The run folder (checkpoints go to its ``checkpoints/``).
    """

    def __init__(self, save_freq: int, run: RunDir):
        super().__init__(
            save_freq,
            str(run / rundir.CHECKPOINTS),
            name_prefix=rundir.CHECKPOINT_PREFIX,
            save_replay_buffer=True,
            save_vecnormalize=True,
        )
        self.run = run
        self._grid = StepGrid(save_freq)
        self._between_rollouts = False
        self._collecting_from: int | None = None  # on-policy: the step count at which the current rollout began

    def _on_training_start(self) -> None:
        self._grid.start(self.model.num_timesteps)
        self._between_rollouts = not isinstance(self.model, OffPolicyAlgorithm)

    def _save_if_due(self) -> None:
        self.num_timesteps = self.model.num_timesteps
        if self._grid.due(self.num_timesteps):
            self.save()

    def _on_rollout_start(self) -> None:
        if self._between_rollouts:
            self._save_if_due()
            self._collecting_from = self.model.num_timesteps

    def _on_rollout_end(self) -> None:
        self._collecting_from = None

    def _on_training_end(self) -> None:
        if self._between_rollouts:
            self._save_if_due()

    def _on_step(self) -> bool:
        if not self._between_rollouts:
            self._save_if_due()
        return True

    def save_interrupted(self) -> int | None:
        """After Ctrl-C: save what was trained, to resume from, if it is a state of the uninterrupted run.

        On-policy, that is a policy interrupted while collecting a rollout: it is saved at the rollout's first
        step (the rollout's steps are discarded), not one interrupted inside its update.

        :return: the step count of the checkpoint written (or saved at that step before: the run's own, kept), or
            None (none is a state of the uninterrupted run, or the model holds NaN or inf)
        """
        if self._between_rollouts:
            if self._collecting_from is None:
                return None
            self.model.num_timesteps = self._collecting_from
        self.num_timesteps = self.model.num_timesteps
        if self.run.checkpoint(self.num_timesteps).exists():  # saved on the grid at this very step
            return self.num_timesteps
        try:
            self.save()
        except NonFiniteModel:
            return None
        return self.num_timesteps

    def _checkpoint_path(self, checkpoint_type: str = "", extension: str = "") -> str:
        """SB3's hook for checkpoint file names: the run folder's names (``rundir``)."""
        return str(self.run.checkpoint(self.num_timesteps, checkpoint_type))

    def save(self) -> None:
        """Save a checkpoint at the current step count.

        :raises NonFiniteModel: the model's tensors or normalisation statistics hold NaN or inf (nothing is written).
        :raises FileExistsError: a file of a checkpoint at this step count exists (nothing is written).
        """
        vec_normalize = self.model.get_vec_normalize_env()
        writers: dict[Path, Callable[[Path], Any]] = {}  # each file, and what writes it
        if vec_normalize is not None:
            writers[Path(self._checkpoint_path("vecnormalize_"))] = lambda path: vec_normalize.save(str(path))
        if isinstance(self.model, OffPolicyAlgorithm):
            writers[Path(self._checkpoint_path("replay_buffer_"))] = self.model.save_replay_buffer
        writers[Path(self._checkpoint_path())] = self.model.save  # the model: renamed into place last
        self._check_finite()
        existing = [path.name for path in writers if path.exists()]
        if existing:
            raise FileExistsError(f"{', '.join(existing)} in {self.save_path}: a checkpoint is never written over")
        Path(self.save_path).mkdir(parents=True, exist_ok=True)
        for path, write in writers.items():
            write(temporary(path))
        for path in writers:  # the model last
            os.replace(temporary(path), path)
        buffers = Path(self.save_path).glob(f"{rundir.CHECKPOINT_PREFIX}_replay_buffer_*_steps.pkl")
        for old in sorted(buffers, key=rundir.checkpoint_steps)[:-KEPT_REPLAY_BUFFERS]:
            old.unlink()

    def _check_finite(self) -> None:
        """Raise ``NonFiniteModel`` if the model's saved tensors (``get_parameters``: the policy's weights, the
        optimizers' state) or its VecNormalize statistics hold NaN or inf, naming the first few."""
        bad = checkpoints.non_finite(self.model.get_parameters())
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            bad += checkpoints.non_finite(checkpoints.normalization_statistics(vec_normalize), "vecnormalize")
        if bad:
            saved = self.run.checkpoint_step_counts()
            where = f"the checkpoint at {saved[-1]:,} steps" if saved else "the start (no checkpoint was saved)"
            raise NonFiniteModel(
                f"training diverged: the model holds NaN or inf at {self.num_timesteps:,} steps ({rundir.few(bad)}); "
                f"no checkpoint was saved of it, so a resume continues from {where}"
            )


class StopSignalCallback(BaseCallback):
    """Raise, at the next step, a Ctrl-C or SIGTERM whose exception Python discarded because it arrived while a
    finalizer ran (see ``lattice.experiments.process.stop_signals_as_interrupt``): the run stops as it would have."""

    def _on_step(self) -> bool:
        stop = pending_stop()
        if stop is not None:
            raise stop
        return True


class UpdateSizeCallback(BaseCallback):
    """Say once, on stderr and in ``progress.csv`` (``train/updates_too_large``), when on-policy updates stay far
    larger than PPO's trust region allows, which is how a diverging PPO run looks while its returns still print.

    An update is too large when SB3's ``train/approx_kl`` (the mean KL between the policy that collected the
    rollout and the updated one, summed over action dimensions) exceeds ``max_kl``, or ``train/clip_fraction``
    (the share of samples whose probability ratio left [1 − ε, 1 + ε]) exceeds ``max_clip_fraction``. Typical
    values: approx-KL 0.01–0.1 (``target_kl`` settings in common use are 0.01–0.05) and clip fractions 0.05–0.3.
    The warning comes after ``patience`` such updates in a row. Off-policy algorithms log neither: nothing happens.

    :param max_kl: approx-KL threshold (nats).
    :param max_clip_fraction: clip-fraction threshold.
    :param patience: Consecutive too-large updates before the warning.
    """

    def __init__(self, max_kl: float = 1.0, max_clip_fraction: float = 0.5, patience: int = 5):
        super().__init__()
        self.max_kl, self.max_clip_fraction, self.patience = max_kl, max_clip_fraction, patience
        self.streak = 0
        self.warned = False

    def _on_rollout_start(self) -> None:
        self._check()  # the previous update's train/* values are still in the logger (dumped after this rollout)

    def _on_training_end(self) -> None:
        self._check()

    def _on_step(self) -> bool:
        return True

    def _check(self) -> None:
        values = self.logger.name_to_value
        if "train/approx_kl" not in values or "train/clip_fraction" not in values:
            return
        kl, clipped = float(values["train/approx_kl"]), float(values["train/clip_fraction"])
        too_large = not (kl <= self.max_kl and clipped <= self.max_clip_fraction)  # NaN counts as too large
        self.streak = self.streak + 1 if too_large else 0
        if self.streak >= self.patience and not self.warned:
            self.warned = True
            self.logger.record("train/updates_too_large", 1)
            print(
                f"warning: at {self.num_timesteps:,} steps, {self.streak} updates in a row moved the policy too far "
                f"(approx-KL {kl:.3g} > {self.max_kl:g} or clip fraction {clipped:.2f} > {self.max_clip_fraction:g}): "
                "training is likely diverging. Remedies: a lower learning_rate, target_kl (e.g. 0.02) to stop an "
                "update's epochs early, fewer n_epochs, or for gsde/lattice a tighter policy_kwargs.std_clip",
                file=sys.stderr,
                flush=True,
            )
