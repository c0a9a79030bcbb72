"""``make videos`` (experiments/videos.py): a sweep's Lattice trial trained if missing, rendered early and best."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import yaml

from lattice.experiments.rundir import RunDir
from tests.test_cli import ROOT, cli

VIDEOS = str(ROOT / "experiments" / "videos.py")
TINY_SWEEP = str(ROOT / "configs" / "sweeps" / "tiny.yaml")


def frames_of(path) -> np.ndarray:
    return np.stack(list(imageio.mimread(path, memtest=False)))


def test_a_missing_trial_is_trained_as_the_sweep_would_then_rendered_early_and_best(tmp_path):
    args = ["--sweep", TINY_SWEEP, "--log-dir", str(tmp_path / "logs"), "--out", str(tmp_path / "videos")]
    result = cli(VIDEOS, *args, "--episodes", "1", "--size", "160", "120", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = RunDir(tmp_path / "logs" / "tiny" / "trials" / "ppo_lattice_elbow_seed0")
    assert run.finished_summary() is not None and run.config()["noise"] == "lattice"
    assert yaml.safe_load((run / "command.txt").read_text().splitlines()[0]) is not None
    task = "myoElbowPose1D6MRandom-v0"
    early, best = (frames_of(tmp_path / "videos" / f"{task}_{label}.mp4") for label in ("early", "best"))
    for frames in (early, best):
        # one episode of max_episode_steps = 20: the reset frame and 19 more; a scene, not a blank image
        assert frames.shape == (20, 120, 160, 3) and frames.std() > 10
    strip = imageio.imread(tmp_path / "videos" / f"{task}.png")
    assert strip.shape[:2] == (2 * 120, 6 * 160)
    # early: the first checkpoint (64 steps); best: the best evaluated checkpoint after it (here the only one, 128)
    assert run.checkpoint_step_counts() == [64, 128]
    assert "model 64, 20 frames" in result.stdout and "model 128, 20 frames" in result.stdout
    # the trial now counts as finished for the sweep: a second call renders again without training
    result = cli(VIDEOS, *args, "--episodes", "1", "--size", "160", "120", cwd=tmp_path)
    assert result.returncode == 0 and "training" not in result.stdout


def test_a_setting_the_sweep_does_not_have_exits_2_before_anything_is_written(tmp_path):
    args = ["--sweep", TINY_SWEEP, "--log-dir", str(tmp_path / "logs"), "--out", str(tmp_path / "videos")]
    result = cli(VIDEOS, *args, "--noise-period", "7", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: The sweep 'tiny' has no trial of lattice with noise_period 7 and seed 0"
    assert not (tmp_path / "logs").exists() and not (tmp_path / "videos").exists()


def test_two_sweeps_with_the_same_task_exit_2_before_anything_is_written(tmp_path):
    # tiny.yaml twice: both have the elbow's Lattice trial, whose videos would land on the same files
    args = ["--sweep", TINY_SWEEP, TINY_SWEEP, "--log-dir", str(tmp_path / "logs"), "--out", str(tmp_path / "videos")]
    result = cli(VIDEOS, *args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("error: Two sweeps have the task myoElbowPose1D6MRandom-v0 (")
    assert "--sweep" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "logs").exists() and not (tmp_path / "videos").exists()


def test_the_committed_videos_show_each_hand_task_early_and_best():
    # videos/ as `make videos` left it (from hand_reorient.yaml and hand_pen.yaml): a scene in every video, and the
    # policy early in training moves the hand differently from its best one
    for task in ("myoHandReorient8-v0", "myoHandPenTwirlRandom-v0"):
        early, best = (frames_of(ROOT / "videos" / f"{task}_{label}.mp4") for label in ("early", "best"))
        for frames in (early, best):
            assert frames.shape[0] >= 50 and frames.shape[1:] == (240, 320, 3)
            assert frames.std() > 10 and all(frame.std() > 5 for frame in frames[:: len(frames) // 10])
        n = min(len(early), len(best))
        # the reset frames are the same scene (same seed): they differ only by the encoding; afterwards the two
        # policies' hands part ways
        difference = np.abs(early[:n].astype(np.int16) - best[:n].astype(np.int16)).mean(axis=(1, 2, 3))
        assert difference[n // 2 :].mean() > max(2.0, 2 * difference[0])
        strip = imageio.imread(ROOT / "videos" / f"{task}.png")
        assert strip.shape[:2] == (2 * 240, 6 * 320)
