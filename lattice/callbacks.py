"""SB3 callbacks of an experiment run: energy of training episodes, evaluation with energy, checkpoints.

Everything written here survives a SIGKILL: each file (``evaluations.npz``, the best model, every checkpoint
file) is written under a temporary name and renamed into place, so no file is ever half-written.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback, EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv, sync_envs_normalization

from lattice.envs import ENERGY_KEYS


def temporary(path: Path) -> Path:
    """Where ``path`` is written before ``os.replace`` moves it into place (hidden, same folder and suffix)."""
    return path.with_name(f".{path.stem}.tmp{path.suffix}")


def atomic_savez(path: Path, **arrays: Any) -> None:
    """``np.savez`` to ``path`` through a temporary file, so a killed process never leaves a truncated file."""
    np.savez(temporary(path), **arrays)
    os.replace(temporary(path), path)


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
    :param run_dir: Where ``evaluations.npz``, ``best_model.zip`` and ``best_vecnormalize.pkl`` go.
    :param eval_freq: Evaluate each time the step count passes a multiple of ``eval_freq`` (all envs together),
        so a resumed run keeps the same grid of evaluation steps.
    :param n_eval_episodes: Episodes per evaluation.
    :param verbose: 1: one line per evaluation.
    """

    def __init__(self, eval_env: VecEnv, run_dir: Path, eval_freq: int, n_eval_episodes: int, verbose: int = 1):
        super().__init__(
            eval_env,
            n_eval_episodes=n_eval_episodes,
            eval_freq=eval_freq,
            log_path=str(run_dir),
            best_model_save_path=str(run_dir),
            deterministic=True,
            verbose=verbose,
        )
        self.run_dir = run_dir
        self.evaluations_energy: dict[str, list[list[float]]] = {key: [] for key in ENERGY_KEYS}
        self._episode_energy: dict[str, list[float]] = {}
        self._start_time = time.time()
        self._start_steps = 0
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
        if self.evaluations_results:
            self.best_mean_reward = float(np.max(np.mean(self.evaluations_results, axis=1)))

    def _on_training_start(self) -> None:
        self._start_time, self._start_steps = time.time(), self.model.num_timesteps
        self._grid.start(self.model.num_timesteps)

    def _log_success_callback(self, locals_: dict[str, Any], globals_: dict[str, Any]) -> None:
        super()._log_success_callback(locals_, globals_)
        info = locals_["info"]
        if locals_["done"] and "episode" in info:
            for key in ENERGY_KEYS:
                if key in info:
                    self._episode_energy.setdefault(key, []).append(float(info[key]))

    def _on_step(self) -> bool:
        return self.evaluate() if self._grid.due(self.num_timesteps) else True

    def evaluate(self) -> bool:
        """Evaluate now, log, save ``evaluations.npz`` and the best model; returns whether to continue."""
        if self.model.get_vec_normalize_env() is not None:
            sync_envs_normalization(self.training_env, self.eval_env)
        self._is_success_buffer, self._episode_energy = [], {}
        returns, lengths = evaluate_policy(
            self.model,
            self.eval_env,
            n_eval_episodes=self.n_eval_episodes,
            deterministic=self.deterministic,
            return_episode_rewards=True,
            callback=self._log_success_callback,
        )
        assert isinstance(returns, list) and isinstance(lengths, list)
        self.evaluations_timesteps.append(self.num_timesteps)
        self.evaluations_results.append(returns)
        self.evaluations_length.append(lengths)
        arrays: dict[str, Any] = dict(
            timesteps=self.evaluations_timesteps, results=self.evaluations_results, ep_lengths=self.evaluations_length
        )
        if self._is_success_buffer:
            self.evaluations_successes.append(self._is_success_buffer)
            arrays["successes"] = self.evaluations_successes
        for key, values in self._episode_energy.items():
            self.evaluations_energy[key].append(values)
            arrays[key] = self.evaluations_energy[key]
        atomic_savez(self.run_dir / "evaluations.npz", **arrays)

        mean_return = float(np.mean(returns))
        self.last_mean_reward = mean_return
        self.logger.record("eval/mean_reward", mean_return)
        self.logger.record("eval/mean_ep_length", float(np.mean(lengths)))
        line = f"eval {self.num_timesteps:>10,d} steps | return {mean_return:9.2f} ± {np.std(returns):7.2f}"
        if self._is_success_buffer:
            success = float(np.mean(self._is_success_buffer))
            self.logger.record("eval/success_rate", success)
            line += f" | success {success:4.0%}"
        for key, values in self._episode_energy.items():
            self.logger.record(f"eval/{key}", float(np.mean(values)))
            line += f" | {key.removeprefix('ep_')} {np.mean(values):.4f}"
        elapsed = time.time() - self._start_time
        speed = (self.num_timesteps - self._start_steps) / max(elapsed, 1e-9)
        line += f" | {speed:,.0f} steps/s"
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        if self.verbose:
            print(line, flush=True)

        if mean_return > self.best_mean_reward:
            self.best_mean_reward = mean_return
            self._save_best(mean_return)
        return True

    def _save_best(self, mean_return: float) -> None:
        """``best_model.zip``, its ``best_vecnormalize.pkl`` and ``best_model.yml`` (which evaluation it was)."""
        model, stats, record = (
            self.run_dir / name for name in ("best_model.zip", "best_vecnormalize.pkl", "best_model.yml")
        )
        self.model.save(temporary(model))
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            vec_normalize.save(str(temporary(stats)))
            os.replace(temporary(stats), stats)
        os.replace(temporary(model), model)
        temporary(record).write_text(yaml.safe_dump({"timesteps": int(self.num_timesteps), "return_mean": mean_return}))
        os.replace(temporary(record), record)


class RunCheckpointCallback(CheckpointCallback):
    """Checkpoints (model, VecNormalize and, off-policy, the replay buffer) that a kill cannot leave half-written.

    Each file is written under a temporary name and renamed; the model's ``.zip`` is renamed last, so a checkpoint
    whose model file exists is complete. Only the newest replay buffer is kept: it is large (SAC's is hundreds
    of MB) and only the newest is needed to resume. File names are SB3's (``rl_model_<steps>_steps.zip``, ...).

    On-policy algorithms (PPO, RecurrentPPO) update once per rollout, after collecting it. A checkpoint taken
    inside a rollout would hold a policy that has not learnt from steps it already counts, and a run resumed from
    it would collect its rollouts off the uninterrupted run's grid (ending at a different step count). So they
    are checkpointed between rollouts, after the update: at the first rollout start (or the end of training)
    past each multiple of ``save_freq``. Off-policy algorithms are checkpointed at the step itself.

    :param save_freq: Save each time the step count passes a multiple of ``save_freq`` (all envs together).
    :param save_path: The checkpoints folder.
    """

    def __init__(self, save_freq: int, save_path: Path):
        super().__init__(save_freq, str(save_path), save_replay_buffer=True, save_vecnormalize=True)
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

        :return: the step count of the checkpoint written, or None
        """
        if self._between_rollouts:
            if self._collecting_from is None:
                return None
            self.model.num_timesteps = self._collecting_from
        self.num_timesteps = self.model.num_timesteps
        self.save()
        return self.num_timesteps

    def save(self) -> None:
        """Save a checkpoint at the current step count."""
        Path(self.save_path).mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        vec_normalize = self.model.get_vec_normalize_env()
        if vec_normalize is not None:
            written.append(Path(self._checkpoint_path("vecnormalize_", extension="pkl")))
            vec_normalize.save(str(temporary(written[-1])))
        if isinstance(self.model, OffPolicyAlgorithm):
            written.append(Path(self._checkpoint_path("replay_buffer_", extension="pkl")))
            self.model.save_replay_buffer(temporary(written[-1]))
        written.append(Path(self._checkpoint_path(extension="zip")))
        self.model.save(temporary(written[-1]))
        for path in written:  # the model last
            os.replace(temporary(path), path)
        for old in sorted(Path(self.save_path).glob("rl_model_replay_buffer_*_steps.pkl"), key=checkpoint_steps)[:-1]:
            old.unlink()


def checkpoint_steps(path: Path) -> int:
    """The step count in a checkpoint file name, ``..._<steps>_steps.<ext>``."""
    return int(path.stem.rsplit("_", 2)[-2])
