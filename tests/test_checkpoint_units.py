"""A checkpoint is a unit (model, VecNormalize statistics, and for SAC the replay buffer), readable and finite, or
it is not one: resumes of stopped tiny runs whose checkpoints miss a file or hold NaN, through the CLI; a run whose
model turns NaN; and the checkpoint callback, which never writes over a checkpoint file."""

from __future__ import annotations

import hashlib
import io
import pickle
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from lattice.experiments.callbacks import NonFiniteModel, RunCheckpointCallback
from lattice.experiments.config import load_yaml, resolve_config
from lattice.experiments.rundir import RunDir
from lattice.experiments.training import RunStopped, build_model, normalized, resume_run, start_run
from tests.helpers import RUN, cli

TOTAL = 512  # every tiny run's budget: 8 rollouts of 64 steps (PPO)
TINY = {
    "ppo": ["n_steps=64", "batch_size=32"],
    "sac": ["learning_starts=32", "batch_size=32", "buffer_size=2000", "train_freq=1"],
}


def checksums(folder: Path) -> dict[str, str]:
    """Every file's SHA-256, except the lock file (a resume takes the lock, and writes its name, before it looks)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "writer.lock"
    }


class _StopAfterEvaluation(BaseCallback):
    """Ctrl-C right after the evaluation at ``steps``, remembering the checkpoint files as they were then."""

    def __init__(self, run: Path, steps: int):
        super().__init__()
        self.run, self.steps = run, steps
        self.checkpoints_then: dict[str, str] = {}

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.steps:
            self.checkpoints_then = checksums(self.run / "checkpoints")
            raise KeyboardInterrupt
        return True


def stopped_run(tmp_path: Path, algo: str, stop_at: int) -> Path:
    """A tiny normalised run on Pendulum (a checkpoint and an evaluation every 64 steps), stopped by Ctrl-C right
    after the evaluation at ``stop_at`` steps."""
    config = resolve_config(
        algo,
        "lattice",
        "Pendulum-v1",
        overrides=dict(timesteps=TOTAL, n_envs=1, eval_freq=64, eval_episodes=1, save_freq=64),
        hyperparams=["normalize=true", "max_episode_steps=50", *TINY[algo]],
    )
    run_dir = tmp_path / "run"
    stop = _StopAfterEvaluation(run_dir, stop_at)
    with pytest.raises(RunStopped):
        start_run(config, tmp_path, run_dir=run_dir, progress_bar=False, after_eval=stop)
    # Ctrl-C saved no second copy over the checkpoint it could resume from: that one is the run's own. (A new SAC
    # checkpoint drops the replay buffers older than the two newest.)
    then = {name: checksum for name, checksum in stop.checkpoints_then.items() if "replay_buffer" not in name}
    assert {name: checksums(run_dir / "checkpoints")[name] for name in then} == then
    return run_dir


def copy_of(run_dir: Path, name: str) -> Path:
    copy = run_dir.with_name(name)
    shutil.copytree(run_dir, copy)
    return copy


def resume(run_dir: Path) -> Any:
    return cli(RUN, "--resume", str(run_dir), "--no-progress-bar", cwd=run_dir.parent)


def put_nan_in_the_weights(model_zip: Path) -> None:
    """Rewrite a model zip with one weight of its policy set to NaN (every other entry as it was)."""
    with zipfile.ZipFile(model_zip) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    state = th.load(io.BytesIO(entries["policy.pth"]), weights_only=True)
    state["action_net.weight"][0, 0] = float("nan")
    buffer = io.BytesIO()
    th.save(state, buffer)
    entries["policy.pth"] = buffer.getvalue()
    with zipfile.ZipFile(model_zip, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


def put_inf_in_the_statistics(vecnormalize_pkl: Path) -> None:
    with vecnormalize_pkl.open("rb") as f:
        stats = pickle.load(f)
    stats.obs_rms.var[0] = np.inf
    stats.class_attributes, stats.returns = {}, None  # dropped by pickling, as VecNormalize's save drops them
    with vecnormalize_pkl.open("wb") as f:
        pickle.dump(stats, f)


def assert_exits_2_changing_nothing(run_dir: Path, message: str) -> None:
    before = checksums(run_dir)
    result = resume(run_dir)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert checksums(run_dir) == before


@pytest.mark.slow
def test_ppo_checkpoints_without_statistics_or_with_nan_are_set_aside_never_written_over(tmp_path):
    run_dir = stopped_run(tmp_path, "ppo", stop_at=256)  # inside the rollout begun at 192: saved at rollout starts
    assert RunDir(run_dir).checkpoint_step_counts() == [64, 128, 192]
    files = checksums(run_dir / "checkpoints")
    assert len(files) == 6  # a model and its statistics each
    model, stats = "rl_model_{}_steps.zip", "rl_model_vecnormalize_{}_steps.pkl"
    copies = {name: copy_of(run_dir, name) for name in ("no_stats", "nan_weights", "inf_stats", "nan_only_one")}

    # The newest statistics missing: that checkpoint is incomplete, set aside whole with a warning, and the resume
    # continues from the one before it; it saves its own checkpoint at 192 steps.
    (run_dir / "checkpoints" / stats.format(192)).unlink()
    result = resume(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line for line in result.stderr.splitlines() if line.startswith("warning")] == [
        f"warning: {run_dir / 'checkpoints' / stats.format(192)} is missing; the checkpoint at 192 steps is set aside"
        f" as {model.format(192)}.incomplete"
    ]
    assert f"resuming {run_dir} from checkpoint at 128 steps" in result.stdout
    assert load_yaml(run_dir / "summary.yml")["timesteps"] == TOTAL
    after = checksums(run_dir / "checkpoints")
    assert after[f"{model.format(192)}.incomplete"] == files[model.format(192)]  # kept as it was, under a new name
    for steps in (64, 128):  # the one resumed from, and the one before it: left as they were
        assert after[model.format(steps)] == files[model.format(steps)]
        assert after[stats.format(steps)] == files[stats.format(steps)]
    assert after[model.format(192)] != files[model.format(192)]  # the resumed run's own
    assert RunDir(run_dir).checkpoint_step_counts() == list(range(64, TOTAL + 1, 64))

    # NaN in the newest model's weights: set aside as non-finite (the model and its statistics), the one before used.
    nan_weights = copies["nan_weights"]
    put_nan_in_the_weights(nan_weights / "checkpoints" / model.format(192))
    poisoned = checksums(nan_weights / "checkpoints")[model.format(192)]
    result = resume(nan_weights)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line for line in result.stderr.splitlines() if line.startswith("warning")] == [
        f"warning: {nan_weights / 'checkpoints' / model.format(192)} holds NaN or inf (policy.action_net.weight); the "
        f"checkpoint at 192 steps is set aside as {model.format(192)}.nonfinite, {stats.format(192)}.nonfinite"
    ]
    assert f"resuming {nan_weights} from checkpoint at 128 steps" in result.stdout
    after = checksums(nan_weights / "checkpoints")
    assert after[f"{model.format(192)}.nonfinite"] == poisoned
    assert after[f"{stats.format(192)}.nonfinite"] == files[stats.format(192)]
    assert load_yaml(nan_weights / "summary.yml")["timesteps"] == TOTAL

    # No statistics at all: no checkpoint, so no resume (it would start over and write over the old models).
    no_stats = copies["no_stats"]
    for steps in (64, 128, 192):
        (no_stats / "checkpoints" / stats.format(steps)).unlink()
    assert_exits_2_changing_nothing(
        no_stats,
        f"No checkpoint of {no_stats} can be used ({stats.format(192)} is missing; {stats.format(128)} is missing; "
        f"{stats.format(64)} is missing); nothing was changed. Start a new run with: lattice-train --config "
        f"{no_stats / 'config.yml'}",
    )

    # inf in the newest statistics and NaN in the older models' weights: none is usable, nothing changes.
    inf_stats = copies["inf_stats"]
    put_inf_in_the_statistics(inf_stats / "checkpoints" / stats.format(192))
    for steps in (64, 128):
        put_nan_in_the_weights(inf_stats / "checkpoints" / model.format(steps))
    assert_exits_2_changing_nothing(
        inf_stats,
        f"No checkpoint of {inf_stats} can be used ({stats.format(192)} holds NaN or inf (obs_rms.var); "
        f"{model.format(128)} holds NaN or inf (policy.action_net.weight); {model.format(64)} holds NaN or inf "
        f"(policy.action_net.weight)); nothing was changed. Start a new run with: lattice-train --config "
        f"{inf_stats / 'config.yml'}",
    )

    # The only checkpoint holds NaN: the same.
    only = copies["nan_only_one"]
    for steps in (128, 192):
        (only / "checkpoints" / model.format(steps)).unlink()
        (only / "checkpoints" / stats.format(steps)).unlink()
    put_nan_in_the_weights(only / "checkpoints" / model.format(64))
    assert_exits_2_changing_nothing(
        only,
        f"No checkpoint of {only} can be used ({model.format(64)} holds NaN or inf (policy.action_net.weight)); "
        f"nothing was changed. Start a new run with: lattice-train --config {only / 'config.yml'}",
    )


@pytest.mark.slow
def test_sac_checkpoints_need_their_replay_buffer(tmp_path):
    run_dir = stopped_run(tmp_path, "sac", stop_at=256)  # off-policy: Ctrl-C saved the checkpoint at 256
    run = RunDir(run_dir)
    assert run.checkpoint_step_counts() == [64, 128, 192, 256]
    buffer = "rl_model_replay_buffer_{}_steps.pkl"
    files = checksums(run_dir / "checkpoints")
    assert sorted(name for name in files if "replay_buffer" in name) == [buffer.format(192), buffer.format(256)]

    # No replay buffer at all: one line, exit 2, nothing changed (older checkpoints are named by count).
    no_buffers = copy_of(run_dir, "no_buffers")
    for steps in (192, 256):
        (no_buffers / "checkpoints" / buffer.format(steps)).unlink()
    assert_exits_2_changing_nothing(
        no_buffers,
        f"No checkpoint of {no_buffers} can be used ({buffer.format(256)} is missing; {buffer.format(192)} is "
        f"missing; {buffer.format(128)} is missing; and 1 older checkpoints); nothing was changed. Start a new run "
        f"with: lattice-train --config {no_buffers / 'config.yml'}",
    )

    # The newest replay buffer missing: the checkpoint at 192 is used, that at 256 set aside (model and statistics).
    (run_dir / "checkpoints" / buffer.format(256)).unlink()
    result = resume(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [line for line in result.stderr.splitlines() if line.startswith("warning")] == [
        f"warning: {run_dir / 'checkpoints' / buffer.format(256)} is missing; the checkpoint at 256 steps is set "
        "aside as rl_model_256_steps.zip.incomplete, rl_model_vecnormalize_256_steps.pkl.incomplete"
    ]
    assert f"resuming {run_dir} from checkpoint at 192 steps" in result.stdout
    after = checksums(run_dir / "checkpoints")
    assert after["rl_model_256_steps.zip.incomplete"] == files["rl_model_256_steps.zip"]
    assert after["rl_model_vecnormalize_256_steps.pkl.incomplete"] == files["rl_model_vecnormalize_256_steps.pkl"]
    for name, checksum in files.items():  # each earlier file: used, left, or set aside under a new name
        if "_256_" not in name and name != buffer.format(192):
            assert after[name] == checksum, name
    steps = load_yaml(run_dir / "summary.yml")["timesteps"]
    assert steps >= TOTAL
    # The resumed run's checkpoints after 192 are its own; it keeps the replay buffers of the two newest only (the
    # one it resumed from went once two newer ones were saved).
    assert run.checkpoint_step_counts() == list(range(64, TOTAL + 1, 64))
    assert sorted(name for name in after if name.startswith("rl_model_replay_buffer")) == [
        buffer.format(448),
        buffer.format(512),
    ]


class _NaNReward(gym.Wrapper):
    """Pendulum whose rewards turn NaN after 100 steps while ``on`` (as an env with a bug does)."""

    on = True

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.steps = 0

    def step(self, action: Any) -> Any:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        return obs, np.nan if self.on and self.steps > 100 else reward, terminated, truncated, info


def test_a_model_that_turns_nan_is_not_saved_and_the_run_resumes_from_its_last_finite_checkpoint(tmp_path):
    gym.register("NaNRewardPendulum-v0", entry_point=lambda **kwargs: _NaNReward(gym.make("Pendulum-v1", **kwargs)))
    try:
        # One gradient step per rollout: the NaN reaches the weights in the update after step 128 without PPO's
        # own checks seeing it (a second minibatch would fail on a NaN action distribution first).
        config = resolve_config(
            "ppo",
            "isotropic",
            "NaNRewardPendulum-v0",
            overrides=dict(timesteps=TOTAL, n_envs=1, eval_freq=TOTAL, eval_episodes=1, save_freq=64),
            hyperparams=["n_steps=64", "batch_size=64", "n_epochs=1", "max_episode_steps=50"],
        )
        with pytest.raises(NonFiniteModel):
            start_run(config, tmp_path, run_dir=tmp_path / "run", progress_bar=False)
        run = RunDir(tmp_path / "run")
        assert run.checkpoint_step_counts() == [64]  # none of the NaN model at 128
        error = (run / "error.txt").read_text().splitlines()[0]
        assert error.startswith(
            "stopped at 128 steps: NonFiniteModel: training diverged: the model holds NaN or inf at 128 steps "
            "(policy.log_std, policy.mlp_extractor.policy_net.0.weight, policy.mlp_extractor.policy_net.0.bias and "
        ), error
        assert error.endswith("no checkpoint was saved of it, so a resume continues from the checkpoint at 64 steps")

        _NaNReward.on = False  # the env fixed: the resume continues from the last finite checkpoint
        summary = resume_run(run.path, progress_bar=False)
        assert summary["timesteps"] == TOTAL and run.checkpoint_step_counts() == list(range(64, TOTAL + 1, 64))
        assert (run / "command.txt").read_text().count("\n") == 2
    finally:
        _NaNReward.on = True
        gym.registry.pop("NaNRewardPendulum-v0", None)


def test_the_checkpoint_callback_never_writes_over_a_checkpoint_nor_saves_nan(tmp_path):
    config = resolve_config("sac", "lattice", "Pendulum-v1", hyperparams=["normalize=true", *TINY["sac"]])
    model = build_model(config, normalized(DummyVecEnv([lambda: gym.make("Pendulum-v1")]), config, training=True))
    run = RunDir(tmp_path)
    checkpoints = RunCheckpointCallback(64, run)
    checkpoints.init_callback(model)
    model.num_timesteps = checkpoints.num_timesteps = 64
    checkpoints.save()
    saved = checksums(tmp_path / "checkpoints")
    assert sorted(saved) == [
        "rl_model_64_steps.zip",
        "rl_model_replay_buffer_64_steps.pkl",
        "rl_model_vecnormalize_64_steps.pkl",
    ]
    with pytest.raises(FileExistsError, match="a checkpoint is never written over"):
        checkpoints.save()
    assert checkpoints.save_interrupted() == 64  # saved at that step already: kept as it is
    assert checksums(tmp_path / "checkpoints") == saved

    name, weight = next(model.policy.actor.named_parameters())
    with th.no_grad():
        weight.view(-1)[0] = float("inf")
    model.num_timesteps = checkpoints.num_timesteps = 128
    with pytest.raises(NonFiniteModel, match=rf"NaN or inf at 128 steps \(policy\.actor\.{re.escape(name)}\)"):
        checkpoints.save()
    assert checkpoints.save_interrupted() is None
    assert checksums(tmp_path / "checkpoints") == saved
