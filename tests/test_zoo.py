"""rl-baselines3-zoo's ``enjoy`` on our run folders, and ``lattice-enjoy``: real runs, real zoo, subprocesses.

The zoo normalises with ``<env>/vecnormalize.pkl`` whichever model it loads; the run folder publishes the best
policy and its own statistics under its names, so the zoo must play exactly what ``lattice-enjoy`` plays (same
seed, same episodes, same returns), and refuse what it cannot play right.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from filelock import FileLock
from stable_baselines3 import PPO
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from lattice.envs import make_env
from lattice.experiments import rundir
from lattice.experiments.checkpoints import set_aside_after
from lattice.experiments.cli import enjoy_main
from lattice.experiments.rundir import RunDir
from lattice.experiments.zoo import publish_zoo_view
from tests.conftest import session_folder

ROOT = Path(__file__).resolve().parent.parent
ENV_ID = "myoElbowPose1D6MRandom-v0"


def run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=dict(os.environ))


@pytest.fixture(scope="session")
def elbow_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny PPO run on the MyoSuite elbow with the paper's settings (VecNormalize on), 2 checkpoints; trained once
    and shared by the pytest-xdist workers (the tests only read it), as xdist's documentation does it."""
    shared = session_folder(tmp_path_factory, "zoo")
    run_dir = shared / "logs" / "ppo" / f"{ENV_ID}_1"
    with FileLock(str(shared / "train.lock")):
        if not (run_dir / rundir.SUMMARY).is_file():
            result = run(
                [
                    sys.executable,
                    str(ROOT / "experiments" / "run.py"),
                    *("--algo", "ppo", "--noise", "lattice", "--env", "elbow", "-n", "1024", "--n-envs", "1"),
                    *("--eval-freq", "256", "--eval-episodes", "2", "--save-freq", "512", "--no-progress-bar"),
                    *("--hyperparams", "n_steps=128", "batch_size=64"),
                ],
                cwd=shared,
            )
            assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def zoo_enjoy(run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``python -m rl_zoo3.enjoy`` as a zoo user runs it on ``logs/``: 3 episodes of the elbow (100 steps each)."""
    logs = run_dir.parent.parent
    return run(
        [
            sys.executable,
            *("-m", "rl_zoo3.enjoy", "--algo", "ppo", "--env", ENV_ID, "-f", str(logs), "--exp-id", "1"),
            *("-n", "300", "--no-render", "--gym-packages", "myosuite", "--seed", "0", "--device", "cpu", *extra),
        ],
        cwd=run_dir.parent,
    )


def zoo_returns(output: str) -> list[float]:
    return [float(x) for x in re.findall(r"^Episode Reward: (-?[\d.]+)$", output, flags=re.MULTILINE)]


def test_zoo_layout_points_at_the_best_policy(elbow_run: Path) -> None:
    """The zoo's model and statistics are the best model's, file for file; its config says to normalise."""
    assert (elbow_run / f"{ENV_ID}.zip").read_bytes() == (elbow_run / rundir.BEST_MODEL).read_bytes()
    stats = elbow_run / ENV_ID / rundir.VECNORMALIZE
    assert stats.read_bytes() == (elbow_run / rundir.BEST_VECNORMALIZE).read_bytes()
    zoo_config = yaml.safe_load((elbow_run / ENV_ID / "config.yml").read_text())
    assert zoo_config["normalize"] and zoo_config["env_wrapper"][-1] == "lattice.envs.EpisodeEnergy"
    assert zoo_config["policy"] == "lattice.policies.LatticeActorCriticPolicy"


@pytest.mark.parametrize("flags", [(), ("--load-best",)])
def test_zoo_enjoy_plays_the_policy_with_its_normalisation(elbow_run: Path, flags: tuple[str, ...]) -> None:
    zoo = zoo_enjoy(elbow_run, *flags)
    assert zoo.returncode == 0, zoo.stderr[-3000:]
    assert "Loading running average" in zoo.stdout
    ours = run(
        [sys.executable, str(ROOT / "experiments" / "enjoy.py"), str(elbow_run), "-n", "3", "--seed", "0"],
        cwd=elbow_run,
    )
    assert ours.returncode == 0, ours.stderr[-3000:]
    episode_returns = [float(x) for x in re.findall(r"^episode +\d+ \| return +(-?[\d.]+)", ours.stdout, re.MULTILINE)]
    assert len(episode_returns) == 3 and len(zoo_returns(zoo.stdout)) == 3
    # the same episodes (seed 0), the same policy and statistics: the same returns (the zoo prints 2 decimals)
    assert zoo_returns(zoo.stdout) == [round(r, 2) for r in episode_returns]


def test_zoo_checkpoints_fail_loudly(elbow_run: Path) -> None:
    """Checkpoints are in checkpoints/, where the zoo does not look: it refuses instead of playing one with the
    best model's statistics."""
    steps = RunDir(elbow_run).checkpoint_step_counts()
    assert steps, "the run saved checkpoints"
    for flags in (("--load-checkpoint", str(steps[-1])), ("--load-last-checkpoint",)):
        zoo = zoo_enjoy(elbow_run, *flags)
        output = zoo.stdout + zoo.stderr
        assert zoo.returncode != 0, output[-3000:]
        assert "No model found" in output or "No checkpoint found" in output, output[-3000:]


def test_lattice_enjoy_prints_return_success_energy(elbow_run: Path) -> None:
    """``lattice-enjoy``: a line per episode and a summary with success and energy; the returns are those of the
    saved final model with its own VecNormalize statistics, as SB3's own API computes them."""
    result = run(
        [
            sys.executable,
            *(str(ROOT / "experiments" / "enjoy.py"), str(elbow_run), "--model", "final", "-n", "2", "--seed", "5"),
        ],
        cwd=elbow_run,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    printed = [float(x) for x in re.findall(r"^episode +\d+ \| return +(-?[\d.]+)", result.stdout, re.MULTILINE)]
    summary = lines[-1]
    assert len(printed) == 2
    assert "success" in summary and "effort" in summary and "act_sq" in summary and "action_sq" in summary

    config = RunDir(elbow_run).config()

    def returns(normalise: bool) -> list[float]:
        venv = DummyVecEnv([lambda: Monitor(make_env(ENV_ID, config["env_kwargs"], config["max_episode_steps"]))])
        if normalise:
            venv = VecNormalize.load(str(elbow_run / rundir.VECNORMALIZE), venv)
            venv.training, venv.norm_reward = False, False
        venv.seed(5)
        model = PPO.load(elbow_run / rundir.FINAL_MODEL, device="cpu")
        episode_returns, _ = evaluate_policy(model, venv, n_eval_episodes=2, return_episode_rewards=True)
        return [round(float(r), 2) for r in episode_returns]  # type: ignore[union-attr]

    assert printed == returns(normalise=True)
    assert printed != returns(normalise=False)  # the statistics matter: without them the policy acts otherwise


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "999"], "No 999 model"),
        (["--model", "latest"], "choose best, final or a checkpoint's step count"),
        (["-n", "0"], "--episodes must be positive"),
    ],
)
def test_lattice_enjoy_bad_input_exits_2(
    elbow_run: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command's function in this process (its exit code and stderr are what the console script gives)."""
    assert enjoy_main([str(elbow_run), *args]) == 2
    stderr = capsys.readouterr().err
    assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.fast
def test_lattice_enjoy_on_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert enjoy_main([str(tmp_path)]) == 2
    assert "is not a run folder of lattice-train" in capsys.readouterr().err


def test_resume_past_the_best_model_withdraws_the_zoo_view(tmp_path: Path) -> None:
    """A best model from a stretch a resume discards is set aside, and the zoo's names for it are removed (the
    zoo then finds no model, rather than a policy that no longer exists in the run)."""
    run = RunDir(tmp_path)
    for name in (rundir.BEST_MODEL, rundir.BEST_VECNORMALIZE):
        (tmp_path / name).write_bytes(name.encode())
    (tmp_path / rundir.BEST_RECORD).write_text(yaml.safe_dump({"timesteps": 700, "return_mean": 1.0}))
    rundir.atomic_savez(tmp_path / rundir.EVALUATIONS, timesteps=np.array([300, 700]), results=np.ones((2, 3)))
    publish_zoo_view(run, "lattice/OveractuatedReach-v0")
    assert (tmp_path / "lattice-OveractuatedReach-v0.zip").read_bytes() == rundir.BEST_MODEL.encode()
    set_aside_after(run, 500)
    assert not (tmp_path / "lattice-OveractuatedReach-v0.zip").exists()
    assert not (tmp_path / "lattice-OveractuatedReach-v0" / rundir.VECNORMALIZE).exists()
    assert (tmp_path / "best_model_before_resume_1.zip").read_bytes() == rundir.BEST_MODEL.encode()
    assert run.evaluations()["timesteps"].tolist() == [300]
    assert np.load(tmp_path / "evaluations_before_resume_1.npz")["timesteps"].tolist() == [300, 700]


def test_set_aside_never_reuses_a_number_and_leaves_no_empty_curve(tmp_path: Path) -> None:
    """A resume from the start (no checkpoint) sets every evaluation aside and leaves no evaluations.npz (a run
    without evaluations, as reports expect); the numbers of set-aside files continue past any left by a resume that
    was killed half-way."""
    run = RunDir(tmp_path)
    (tmp_path / "best_model_before_resume_3.zip").write_bytes(b"left by an interrupted resume")
    rundir.atomic_savez(tmp_path / rundir.EVALUATIONS, timesteps=np.array([300]), results=np.ones((1, 3)))
    set_aside_after(run, 0)
    assert not (tmp_path / rundir.EVALUATIONS).exists() and run.evaluations() == {}
    assert np.load(tmp_path / "evaluations_before_resume_4.npz")["timesteps"].tolist() == [300]
