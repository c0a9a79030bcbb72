"""``make videos`` (experiments/videos.py) as it runs: a sweep's Lattice trial trained if missing, rendered early
and best into MP4s and a strip of frames that the tests read back; bad input exits 2 before anything is written."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest
import yaml

from lattice.experiments.rundir import RunDir
from lattice.experiments.sweep import expand
from tests.helpers import ROOT, cli

VIDEOS = str(ROOT / "experiments" / "videos.py")
TINY_SWEEP = str(ROOT / "configs" / "sweeps" / "tiny.yaml")


def frames_of(path) -> np.ndarray:
    return np.stack(list(imageio.mimread(path, memtest=False)))


def test_a_missing_trial_is_trained_as_the_sweep_would_then_rendered_early_and_best(tmp_path):
    """What `make videos` makes, made here by the code on a hand task (a sweep like hand_reorient.yaml on a budget
    of seconds) at the default size: a scene in every frame, the early and the best policy from the same reset
    scene (same seed), their hands parting ways after it, and the strip of both."""
    sweep = {
        "name": "hand",
        "grid": {"algo": ["ppo"], "noise": ["lattice"], "env": ["myoHandReorient8-v0"], "seed": [0]},
        # three checkpoints, each evaluated; a learning rate high enough that one update moves the hand elsewhere
        "settings": {
            **{"timesteps": 192, "n_envs": 1, "eval_freq": 64, "eval_episodes": 2, "save_freq": 64},
            **{"max_episode_steps": 20, "n_steps": 64, "batch_size": 32, "learning_rate": 0.01},
        },
        "retries": 1,
    }
    sweep_file = tmp_path / "hand.yaml"
    sweep_file.write_text(yaml.safe_dump(sweep))
    args = ["--sweep", str(sweep_file), "--log-dir", str(tmp_path / "logs"), "--out", str(tmp_path / "videos")]
    result = cli(VIDEOS, *args, "--episodes", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (name,) = expand(sweep)
    run = RunDir(tmp_path / "logs" / "hand" / "trials" / name)
    assert run.finished_summary() is not None and run.config()["noise"] == "lattice"
    assert yaml.safe_load((run / "command.txt").read_text().splitlines()[0]) is not None
    # early: the first checkpoint (64 steps); best: the later checkpoint with the best evaluation (128 or 192)
    assert run.checkpoint_step_counts() == [64, 128, 192]
    returns = dict(zip(*(run.evaluations()[key].tolist() for key in ("timesteps", "results")), strict=True))
    best = max((128, 192), key=lambda steps: np.mean(returns[steps]))
    task = "myoHandReorient8-v0"
    early, best_frames = (frames_of(tmp_path / "videos" / f"{task}_{label}.mp4") for label in ("early", "best"))
    for frames, steps in ((early, 64), (best_frames, best)):
        # one episode of at most max_episode_steps = 20 (the die may end it sooner): the reset frame and one per
        # step, at the default size (320 x 240)
        assert 10 <= len(frames) <= 20 and frames.shape[1:] == (240, 320, 3)
        assert f"model {steps}, {len(frames)} frames at 100 fps" in result.stdout
        assert frames.std() > 10 and all(frame.std() > 5 for frame in frames)  # a scene, not a blank image
    # the reset frames are the same scene (same seed): they differ only by the encoding; afterwards the two
    # policies' hands part ways
    n = min(len(early), len(best_frames))
    difference = np.abs(early[:n].astype(np.int16) - best_frames[:n].astype(np.int16)).mean(axis=(1, 2, 3))
    assert difference[0] < 1.0 and difference[n // 2 :].mean() > max(2.0, 2 * difference[0]), difference
    strip = imageio.imread(tmp_path / "videos" / f"{task}.png")
    assert strip.shape == (2 * 240, 6 * 320, 3)
    # the strip's corners: the first frame of the early video (top left) and the last of the best (bottom right)
    for tile, frame in ((strip[:240, :320], early[0]), (strip[240:, -320:], best_frames[-1])):
        assert np.abs(tile.astype(np.int16) - frame.astype(np.int16)).mean() < 2.0  # equal up to the encoding

    # the trial now counts as finished for the sweep: a second call renders again without training
    result = cli(VIDEOS, *args, "--episodes", "1", "--size", "160", "120", cwd=tmp_path)
    assert result.returncode == 0 and "training" not in result.stdout
    assert frames_of(tmp_path / "videos" / f"{task}_early.mp4").shape == (len(early), 120, 160, 3)


@pytest.mark.fast
def test_a_setting_the_sweep_does_not_have_exits_2_before_anything_is_written(tmp_path):
    args = ["--sweep", TINY_SWEEP, "--log-dir", str(tmp_path / "logs"), "--out", str(tmp_path / "videos")]
    result = cli(VIDEOS, *args, "--noise-period", "7", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: The sweep 'tiny' has no trial of lattice with noise_period 7 and seed 0"
    assert not (tmp_path / "logs").exists() and not (tmp_path / "videos").exists()


@pytest.mark.fast
def test_two_sweeps_with_the_same_task_exit_2_before_anything_is_written(tmp_path):
    # tiny.yaml twice: both have the elbow's Lattice trial, whose videos would land on the same files
    args = ["--sweep", TINY_SWEEP, TINY_SWEEP, "--log-dir", str(tmp_path / "logs"), "--out", str(tmp_path / "videos")]
    result = cli(VIDEOS, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: Two sweeps have the task myoElbowPose1D6MRandom-v0 (")
    assert "--sweep" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists() and not (tmp_path / "videos").exists()
