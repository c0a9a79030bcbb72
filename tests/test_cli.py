"""experiments/run.py and experiments/render.py as users run them: subprocesses on real envs, tiny budgets."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pandas as pd
import pytest
import torch as th
import yaml
from stable_baselines3.common.monitor import load_results
from stable_baselines3.common.save_util import load_from_zip_file

from lattice.experiments.config import load_yaml, resolve_config
from lattice.experiments.rundir import RunDir
from lattice.noise import NOISES
from tests.helpers import RENDER, RUN, TINY, cli, only_run_dir, stop_when, tiny_run_args

RUN_FILES = [
    "config.yml",
    "args.yml",
    "command.txt",
    "versions.yml",
    "0.monitor.csv",
    "progress.csv",
    "evaluations.npz",
    "best_model.zip",
    "final_model.zip",
    "learning_curve.png",
    "summary.yml",
]


def algo_noise_grid() -> list:
    """Every algorithm × noise. The default run has every algorithm with Lattice and every other noise with one
    algorithm (in turn); the rest of the grid, which adds no new code path to the run folder, is marked slow."""
    algos = ["sac", "ppo", "recurrent_ppo"]
    others = [noise for noise in NOISES if noise != "lattice"]
    default = {("lattice", algo) for algo in algos} | {(n, algos[i % len(algos)]) for i, n in enumerate(others)}
    return [
        pytest.param(algo, noise, marks=() if (noise, algo) in default else pytest.mark.slow)
        for noise in NOISES
        for algo in algos
    ]


@pytest.mark.parametrize(("algo", "noise"), algo_noise_grid())
def test_every_algo_and_noise_leaves_a_complete_run_folder(algo, noise, tmp_path):
    result = cli(*tiny_run_args(algo, noise, tmp_path / "logs"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "logs")
    assert run_dir == tmp_path / "logs" / algo / "myoElbowPose1D6MRandom-v0_1"
    for name in [*RUN_FILES, "energy.png", "best_vecnormalize.pkl", "vecnormalize.pkl"]:
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    checkpoints = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert "rl_model_64_steps.zip" in checkpoints and "rl_model_vecnormalize_128_steps.pkl" in checkpoints
    assert ("rl_model_replay_buffer_128_steps.pkl" in checkpoints) == (algo == "sac")
    if algo != "sac":  # on-policy: the checkpoint at the end of training comes after the last update
        _, final, _ = load_from_zip_file(run_dir / "final_model.zip", device="cpu")
        _, last, _ = load_from_zip_file(run_dir / "checkpoints" / "rl_model_128_steps.zip", device="cpu")
        assert final is not None and last is not None
        assert all(th.equal(final["policy"][k], last["policy"][k]) for k in final["policy"])

    config = load_yaml(run_dir / "config.yml")
    assert (config["algo"], config["noise"], config["env"]) == (algo, noise, "myoElbowPose1D6MRandom-v0")
    if noise == "pink":  # one noise sequence per episode: the run's episode length
        assert config["hyperparams"]["policy_kwargs"]["noise_horizon"] == 20
    evaluations = np.load(run_dir / "evaluations.npz")
    assert evaluations["timesteps"].tolist() == [0, 64, 128]
    assert evaluations["results"].shape == (3, 2) and np.isfinite(evaluations["results"]).all()
    for key in ("successes", "ep_effort", "ep_act_sq", "ep_action_sq"):
        assert evaluations[key].shape == (3, 2), key
    monitor = pd.read_csv(run_dir / "0.monitor.csv", skiprows=1)
    assert list(monitor.columns) == ["r", "l", "t", "ep_effort", "ep_act_sq", "ep_action_sq", "is_success", "diverged"]
    assert not monitor["diverged"].any()  # the elbow's simulation never diverges
    assert (monitor["l"] == 20).all() and len(monitor) >= 128 // 20 - 1
    assert (monitor["ep_effort"] > 0).all()
    summary = load_yaml(run_dir / "summary.yml")
    assert summary["status"] == "finished" and summary["timesteps"] == 128
    assert summary["final_eval"]["return_mean"] == pytest.approx(evaluations["results"][-1].mean())
    assert summary["final_eval"]["effort"] == pytest.approx(evaluations["ep_effort"][-1].mean())
    assert "eval        128 steps | return" in result.stdout


def test_ant_sac_with_video_and_render(tmp_path):
    """SAC on Ant with --video, then experiments/render.py on the same folder: real, moving frames."""
    args = tiny_run_args("sac", "lattice", tmp_path / "logs", env="ant", steps=96)
    result = cli(*args[: args.index("--hyperparams")], "--video", "--hyperparams", "max_episode_steps=20",
                 "n_envs=2", *TINY["sac"], cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "logs")
    assert (run_dir / "1.monitor.csv").is_file()  # two training workers
    assert load_yaml(run_dir / "summary.yml")["video"] == "videos/best.mp4"
    out = tmp_path / "videos" / "ant.mp4"
    result = cli(RENDER, str(run_dir), "--model", "final", "--out", str(out), "--max-steps", "12", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for path, n_frames in [(run_dir / "videos" / "best.mp4", 20), (out, 13)]:
        reader = imageio.get_reader(path)
        assert reader.get_meta_data()["fps"] == pytest.approx(20.0)  # Ant's control step is 0.05 s
        frames = np.array([frame for frame in reader], dtype=np.float64)
        assert len(frames) == n_frames and frames.shape[1:] == (360, 480, 3)
        assert frames.std(axis=(1, 2, 3)).min() > 10  # not blank
        assert np.abs(frames[-1] - frames[0]).mean() > 0.5  # the body moves


def test_render_the_myosuite_hand(tmp_path):
    """The die-reorient hand at its control rate (100 fps), through a camera aimed at the die: not blank, moving."""
    args = tiny_run_args("ppo", "lattice", tmp_path / "logs", env="reorient", steps=64)
    result = cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "logs")
    result = cli(RENDER, str(run_dir), "--max-steps", "6", "--size", "240", "180", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    reader = imageio.get_reader(run_dir / "videos" / "best.mp4")
    assert reader.get_meta_data()["fps"] == pytest.approx(100.0)
    frames = np.array([frame for frame in reader], dtype=np.float64)
    assert frames.shape == (7, 180, 240, 3)
    assert frames.std(axis=(1, 2, 3)).min() > 10
    assert np.abs(frames[-1] - frames[0]).mean() > 0.5


def test_resume_after_sigkill_continues_steps_and_logs(tmp_path):
    log_dir = tmp_path / "logs"
    args = tiny_run_args("sac", "lattice", log_dir, steps=1200)
    args[args.index("--save-freq") + 1] = "300"  # off the evaluation grid: the resumed run keeps that grid
    args[args.index("--eval-freq") + 1] = "200"
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip

    def past_the_checkpoint_at_300() -> bool:
        """The run has evaluated past its checkpoint at 300 steps and begun no later checkpoint."""
        run_dirs = list(log_dir.glob("*/*"))
        if not run_dirs or not (run_dirs[0] / "checkpoints" / "rl_model_300_steps.zip").exists():
            return False
        (run_dir,) = run_dirs
        # every checkpoint file, those being written included (hidden, renamed into place when whole)
        steps = [
            int(m.group(1)) for p in (run_dir / "checkpoints").iterdir() if (m := re.search(r"_(\d+)_steps", p.name))
        ]
        return max(steps) == 300 and max(np.load(run_dir / "evaluations.npz")["timesteps"]) > 300

    # paused there and killed: the kill loses the policy evaluated at 400
    assert stop_when(proc, past_the_checkpoint_at_300), "the run ended before it evaluated past 300 steps"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_dir = only_run_dir(log_dir)
    assert not (run_dir / "summary.yml").exists()
    # The killed run's lock file still names it; the kernel released its lock, so the resume is not blocked.
    assert (run_dir / "writer.lock").read_text().startswith(f"pid {proc.pid} on ")
    # As a run begun by sb3-lattice 0.1.0 has them: monitor CSVs without the `diverged` column; the resume keeps
    # their columns (SB3's Monitor appends rows under the existing header), so SB3's load_results still reads them.
    for monitor in run_dir.glob("*.monitor.csv"):
        lines = monitor.read_text().splitlines(keepends=True)
        assert lines[1].rstrip("\n").split(",")[-1] == "diverged"
        monitor.write_text("".join([lines[0], *(line.rsplit(",", 1)[0] + "\n" for line in lines[1:])]))
    episodes_before = sum(len(m.read_text().splitlines()) - 2 for m in run_dir.glob("*.monitor.csv"))
    progress_before = (run_dir / "progress.csv").read_text()
    monitor_before = (run_dir / "0.monitor.csv").read_text()
    evaluations_before = np.load(run_dir / "evaluations.npz")["timesteps"].tolist()
    assert evaluations_before[:3] == [0, 200, 400]  # the evaluation at 400 is of a policy the kill lost

    result = cli(RUN, "--resume", str(run_dir), "--no-progress-bar", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming" in result.stdout and "from checkpoint at 300 steps" in result.stdout
    summary = load_yaml(run_dir / "summary.yml")
    # SAC collects train_freq = 8 steps at a time: resumed at 300, it ends at 1204, where the final policy is
    # evaluated once (the grid's 1200 is left to that final evaluation).
    steps = summary["timesteps"]
    assert 1200 <= steps < 1208 and summary["final_eval"]["timesteps"] == steps
    evaluations = np.load(run_dir / "evaluations.npz")["timesteps"].tolist()
    assert evaluations == [*range(0, 1001, 200), steps]  # one curve on one grid, each step once
    # Evaluations after the checkpoint (of a policy that is gone) were moved aside, not lost.
    assert np.load(run_dir / "evaluations_before_resume_1.npz")["timesteps"].tolist() == evaluations_before
    # Nothing logged before the kill is lost: the logs continue after it.
    progress_header = progress_before.split("\n", 1)[0]
    progress_rows = progress_before.splitlines()[1:]
    progress_after = pd.read_csv(run_dir / "progress.csv")
    assert progress_after["time/total_timesteps"].max() == steps
    after_lines = (run_dir / "progress.csv").read_text().splitlines()
    assert after_lines[0].startswith(progress_header)
    assert [line.split(",")[: len(progress_header.split(","))] for line in after_lines[1 : 1 + len(progress_rows)]] == [
        row.split(",") for row in progress_rows
    ]
    assert (run_dir / "0.monitor.csv").read_text().startswith(monitor_before)
    episodes = load_results(str(run_dir))
    assert "diverged" not in episodes.columns and episodes["ep_effort"].notna().all()
    assert len(episodes) > episodes_before  # the resumed part's episodes are there too
    # The replay buffer and the normalisation statistics continued from the checkpoint (not from empty).
    from stable_baselines3.common.save_util import load_from_pkl

    buffer = load_from_pkl(run_dir / "checkpoints" / "rl_model_replay_buffer_1200_steps.pkl")
    # SB3 stores a step's transition after the callbacks ran, so a checkpoint at step s holds s - 1 of them: the
    # one at 1200 misses its last, and the resumed checkpoint's last one is gone. Without the buffer: about 800.
    assert buffer.pos == 1200 - 2 and not buffer.full
    # Only the two newest replay buffers are kept: the newest, and the one a damaged newest checkpoint falls back to.
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("rl_model_replay_buffer_*")) == [
        "rl_model_replay_buffer_1200_steps.pkl",
        "rl_model_replay_buffer_900_steps.pkl",
    ]
    stats = load_from_pkl(run_dir / "checkpoints" / "rl_model_vecnormalize_1200_steps.pkl")
    assert 1200 <= stats.obs_rms.count <= 1203  # one per step and per reset; without the statistics: about 800
    assert len((run_dir / "command.txt").read_text().splitlines()) == 2
    assert "--resume" in (run_dir / "command.txt").read_text().splitlines()[1]


def test_ppo_interrupted_and_resumed_ends_where_an_uninterrupted_run_does(tmp_path):
    """PPO learns once per rollout: checkpoints fall between rollouts (after the update), so Ctrl-C and a resume
    keep the rollout grid, and the run ends on the same step count as an uninterrupted one (20 rollouts of 64).
    Ctrl-C comes while the run is paused after its first checkpoint, so it comes mid-run on any machine."""
    log_dir = tmp_path / "logs"
    args = tiny_run_args("ppo", "lattice", log_dir, steps=1280)
    args[args.index("--save-freq") + 1] = "300"  # off the rollout grid: checkpoints at 320, 640, 960, 1216
    args[args.index("--eval-freq") + 1] = "200"
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    first_checkpoint = log_dir / "ppo" / "myoElbowPose1D6MRandom-v0_1" / "checkpoints" / "rl_model_320_steps.zip"
    assert stop_when(proc, first_checkpoint.exists), "the run ended before its first checkpoint"
    proc.send_signal(signal.SIGINT)  # handled as the run continues
    proc.send_signal(signal.SIGCONT)
    stdout, _ = proc.communicate(timeout=120)
    run_dir = only_run_dir(log_dir)
    assert not (run_dir / "summary.yml").exists()
    assert proc.returncode == 130 and "interrupted" in stdout

    def saved() -> list[int]:
        return RunDir(run_dir).checkpoint_step_counts()

    error = (run_dir / "error.txt").read_text().splitlines()
    assert error[0].startswith("stopped at ") and "interrupted (Ctrl-C)" in error[0]
    assert error[1] == f"Resume from the checkpoint at {saved()[-1]:,} steps with: lattice-train --resume {run_dir}"

    # at the first rollout start past 300 (and, if Ctrl-C came while collecting, at that rollout's start)
    assert saved()[0] == 320 and all(steps % 64 == 0 for steps in saved()), saved()
    result = cli(RUN, "--resume", str(run_dir), "--no-progress-bar", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = load_yaml(run_dir / "summary.yml")
    assert summary["timesteps"] == 1280 and summary["final_eval"]["timesteps"] == 1280
    assert np.load(run_dir / "evaluations.npz")["timesteps"].tolist() == [*range(0, 1201, 200), 1280]
    assert {640, 960, 1216} <= set(saved()) and all(steps % 64 == 0 for steps in saved()), saved()


def test_resolved_config_reproduces_the_run(tmp_path):
    result = cli(*tiny_run_args("ppo", "lattice", tmp_path / "a"), "--seed", "5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    first = only_run_dir(tmp_path / "a")
    config = first / "config.yml"
    result = cli(RUN, "--config", str(config), "--log-dir", str(tmp_path / "b"), "--no-progress-bar", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    second = only_run_dir(tmp_path / "b")
    assert load_yaml(second / "config.yml") == load_yaml(config)
    a, b = np.load(first / "evaluations.npz"), np.load(second / "evaluations.npz")
    assert np.array_equal(a["results"], b["results"]) and np.array_equal(a["ep_effort"], b["ep_effort"])
    from stable_baselines3 import PPO

    pa = PPO.load(first / "final_model.zip", device="cpu").policy.state_dict()
    pb = PPO.load(second / "final_model.zip", device="cpu").policy.state_dict()
    assert all(th.equal(pa[k], pb[k]) for k in pa)


def test_a_second_run_gets_a_new_folder(tmp_path):
    log_dir = tmp_path / "logs"
    (log_dir / "ppo" / "myoElbowPose1D6MRandom-v0_1").mkdir(parents=True)
    (log_dir / "ppo" / "myoElbowPose1D6MRandom-v0_1" / "keep.txt").write_text("earlier run")
    result = cli(*tiny_run_args("ppo", "gsde", log_dir, steps=64), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (log_dir / "ppo" / "myoElbowPose1D6MRandom-v0_1" / "keep.txt").read_text() == "earlier run"
    assert (log_dir / "ppo" / "myoElbowPose1D6MRandom-v0_2" / "summary.yml").is_file()


def test_wandb_runs_offline_without_an_api_key_with_metrics_and_video(tmp_path):
    env = {"HOME": str(tmp_path), "WANDB_API_KEY": "", "WANDB_MODE": ""}
    environ = {k: v for k, v in {**os.environ, **env}.items() if not (k.startswith("WANDB") and not v)}
    environ.pop("WANDB_API_KEY", None), environ.pop("WANDB_MODE", None)
    result = subprocess.run(
        [sys.executable, *tiny_run_args("ppo", "lattice", tmp_path / "logs", steps=64), "--wandb", "--video"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "logging offline" in result.stdout
    run_dir = only_run_dir(tmp_path / "logs")
    offline = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))
    assert list(offline[0].glob("files/**/tensorboard/events.out.tfevents.*"))  # metrics: the tensorboard sync
    assert list(offline[0].glob("files/media/videos/**/*.mp4"))  # the rollout video, logged explicitly


LATTICE_PPO_ELBOW = ["--algo", "ppo", "--noise", "lattice", "--env", "elbow"]
BAD_INPUT = [
    (["--algo", "ddpg", "--noise", "lattice"], "Unknown algo 'ddpg'; choose one of: sac, ppo, recurrent_ppo, a2c, tqc"),
    (["--algo", "sac", "--noise", "brown"], "Unknown noise 'brown'; choose one of: isotropic, gsde, lattice"),
    (["--algo", "sac", "--noise", "lattice", "--env", "Ant-v9"], "did you mean 'Ant-v5'"),
    (
        ["--algo", "sac", "--noise", "lattice", "--env", "ant", "-n", "0"],
        "timesteps must be a positive integer at most",
    ),
    (
        ["--algo", "sac", "--noise", "lattice", "--env", "ant", "--eval-episodes", "-1"],
        "eval_episodes must be a positive",
    ),
    (["--algo", "ppo", "--noise", "lattice", "--env", "ant", "--hyperparams", "n_steps"], "Malformed --hyperparams"),
    (["--algo", "ppo", "--noise", "lattice", "--env", "ant", "--hyperparams", "nsteps=8"], "did you mean 'n_steps'"),
    (["--algo", "ppo", "--noise", "isotropic", "--env", "ant", "--noise-period", "8"], "noise_period=8 has no effect"),
    (
        ["--algo", "ppo", "--noise", "lattice", "--env", "elbow", "--hyperparams", "policy_kwargs.net_arch=wide"],
        "Cannot build ppo with noise 'lattice' on myoElbowPose1D6MRandom-v0",
    ),
    (["--algo", "ppo", "--noise", "gsde", "--env", "CartPole-v1"], "needs a continuous (Box) action space"),
    (["--algo", "ppo", "--noise", "gsde", "--env", "elbow", "--device", "gpu"], "Unknown device 'gpu'"),
    (
        ["--algo", "ppo", "--noise", "gsde", "--env", "elbow", "--hyperparams", "normalize={bogus: 1}"],
        "Unknown VecNormalize keyword 'bogus' in normalize",
    ),
    (["--resume", "logs/ppo/x_1", "-n", "100"], "--resume continues a run with its own config; drop --timesteps"),
    # Values SB3's constructors accept but its training does not (checked against the keywords' ranges).
    (["--algo", "ppo", "--noise", "lattice", "--env", "elbow", "--hyperparams", "n_epochs=0"], "n_epochs=0 is out of"),
    (["--algo", "ppo", "--noise", "gsde", "--env", "elbow", "--hyperparams", "gamma=2"], "gamma=2 is out of range"),
    (["--algo", "sac", "--noise", "lattice", "--env", "elbow", "--hyperparams", "batch_size=0"], "batch_size=0 is"),
    (["--algo", "sac", "--noise", "lattice", "--env", "elbow", "--hyperparams", "train_freq=0"], "train_freq=0 is"),
    (["--algo", "sac", "--noise", "isotropic", "--env", "elbow", "--hyperparams", "buffer_size=0"], "buffer_size=0"),
    (["--algo", "sac", "--noise", "lattice", "--env", "elbow", "--hyperparams", "tau=5"], "tau=5 is out of range"),
    (["--algo", "ppo", "--noise", "gsde", "--env", "elbow", "--hyperparams", "n_steps=2.5"], "n_steps must be an int"),
    (
        ["--algo", "sac", "--noise", "lattice", "--env", "elbow", "--hyperparams", "policy_kwargs.alpha=.inf"],
        "alpha must be a finite number >= 0",
    ),
    (
        [*LATTICE_PPO_ELBOW, "--hyperparams", "policy_kwargs.std_clip=[1e-3, .inf]"],
        "std_clip must be (min, max) with 0 < min < max < inf, got [0.001, inf]",
    ),
    (
        [*LATTICE_PPO_ELBOW, "--hyperparams", "policy_kwargs.std_clip=[1e-3, 1, 2]"],
        "std_clip must be (min, max) with 0 < min < max < inf, got [0.001, 1, 2]",
    ),
    (
        ["--algo", "sac", "--noise", "pink", "--env", "elbow", "--hyperparams", "policy_kwargs.noise_exponent=.nan"],
        "noise_exponent must be a finite number (β: 0 white, 1 pink, 2 red), got nan",
    ),
    (
        ["--algo", "ppo", "--noise", "pink", "--env", "elbow", "--hyperparams", "policy_kwargs.noise_horizon=1"],
        "noise_horizon must be an integer >= 2 (the episode length) or None, got 1",
    ),
    (
        ["--algo", "sac", "--noise", "lattice", "--env", "Pendulum-v1", "--hyperparams", "reward_weights={x: 1}"],
        "Pendulum-v1 is not a MyoSuite env: set reward_weights to null",
    ),
    (["--algo", "ppo", "--noise", "lattice", "--env", "elbow", "--device", "mps"], "Device 'mps' is not available"),
    pytest.param(
        ["--algo", "ppo", "--noise", "lattice", "--env", "elbow", "--device", "cuda"],
        "Device 'cuda' is not available on this machine; available: auto, cpu",
        marks=pytest.mark.skipif(th.cuda.is_available(), reason="this machine has a GPU"),
    ),
    pytest.param(
        ["--algo", "sac", "--noise", "lattice", "--env", "Pendulum-v1", "--video"],
        "--video: Pendulum-v1 cannot be rendered here (DependencyNotInstalled: pygame is not installed",
        marks=pytest.mark.skipif(importlib.util.find_spec("pygame") is not None, reason="pygame renders Pendulum"),
    ),
]


# The cases in the fast tier (make test-fast): one of each kind of check (a flag's choice, a name with a suggestion,
# a range, a --hyperparams key, an option that does not apply, a noise parameter, a device, --resume); the others
# run in the default suite.
FAST_BAD_INPUT = (
    "Unknown noise 'brown'",
    "did you mean 'Ant-v5'",
    "timesteps must be a positive integer",
    "Malformed --hyperparams",
    "did you mean 'n_steps'",
    "noise_period=8 has no effect",
    "n_epochs=0 is out of",
    "alpha must be a finite number",
    "Unknown device 'gpu'",
    "--resume continues a run",
)


def bad_input_cases() -> list:
    """BAD_INPUT as pytest.param with the fast tier's mark where FAST_BAD_INPUT names the message."""
    params = [case if hasattr(case, "marks") else pytest.param(*case) for case in BAD_INPUT]  # a param is a tuple too
    return [
        pytest.param(
            *param.values,
            marks=[*param.marks, *([pytest.mark.fast] if any(m in param.values[1] for m in FAST_BAD_INPUT) else [])],
            id=param.values[1][:30],
        )
        for param in params
    ]


@pytest.mark.parametrize(("args", "message"), bad_input_cases())
def test_bad_input_exits_2_with_one_line_and_creates_nothing(args, message, tmp_path):
    result = cli(RUN, *args, "--log-dir", str(tmp_path / "logs"), cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert message in last
    assert not (tmp_path / "logs").exists()


@pytest.mark.fast
def test_a_log_dir_or_config_that_cannot_be_used_exits_2(tmp_path):
    (tmp_path / "logs").write_text("a file, not a folder")
    result = cli(*tiny_run_args("ppo", "lattice", tmp_path / "logs", steps=64), cwd=tmp_path, timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        f"error: Cannot create a run folder in {tmp_path / 'logs'}: Not a directory"
    ]
    (tmp_path / "binary.yml").write_bytes(bytes(range(256)))
    result = cli(RUN, "--config", str(tmp_path / "binary.yml"), "--log-dir", str(tmp_path / "l"), cwd=tmp_path)
    assert result.returncode == 2 and "is not a text file (YAML expected)" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "l").exists()


@pytest.mark.fast
def test_bad_resume_targets(tmp_path):
    result = cli(RUN, "--resume", str(tmp_path / "nowhere"), cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "no such folder" in result.stderr
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a run")
    result = cli(RUN, "--resume", str(tmp_path / "other"), cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "not a run folder" in result.stderr
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["notes.txt"]
    result = cli(RENDER, str(tmp_path / "other"), cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and "not a run folder" in result.stderr


@pytest.mark.fast
def test_config_files_resolve_for_every_task_and_algo():
    for task in ("ant", "reorient", "pen", "elbow"):
        for algo in ("sac", "ppo", "recurrent_ppo"):
            config = resolve_config(algo, "lattice", task)
            assert yaml.safe_load(yaml.safe_dump(config)) == config
