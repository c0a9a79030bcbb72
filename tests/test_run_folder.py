"""A run folder under attack, through the CLI with real processes: a second writer while the run trains, SIGTERM,
a config.yml edited before a resume, damaged checkpoints, and a PPO run whose updates diverge; and, in this
process, a stop signal that arrives while a finalizer runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from stable_baselines3.common.callbacks import BaseCallback

from lattice.experiments.config import load_yaml, resolve_config
from lattice.experiments.process import pending_stop, stop_signals_as_interrupt
from lattice.experiments.rundir import RunDir
from lattice.experiments.training import RunStopped, start_run
from tests.helpers import RUN, cli, only_run_dir

STEPS = 16384


def snapshot(folder: Path) -> dict[str, int]:
    """Every file's modification time, except the lock file (a refused process opens it to name the holder)."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.name != "writer.lock"}


def last_line(result: subprocess.CompletedProcess) -> str:
    return result.stderr.strip().splitlines()[-1]


def test_one_writer_sigterm_edited_config_and_damaged_checkpoints(tmp_path):
    log_dir = tmp_path / "logs"
    args = [
        RUN,
        *("--algo", "ppo", "--noise", "lattice", "--env", "Pendulum-v1", "-n", str(STEPS), "--n-envs", "1"),
        *("--eval-freq", "2048", "--eval-episodes", "2", "--save-freq", "1024", "--log-dir", str(log_dir)),
        *("--no-progress-bar", "--hyperparams", "n_steps=128", "batch_size=64", "max_episode_steps=100"),
    ]
    first = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=dict(os.environ),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and not list(log_dir.glob("*/*/checkpoints/rl_model_1024_steps.zip")):
        time.sleep(0.1)
    run_dir = only_run_dir(log_dir)

    # A second writer while the run trains is refused, naming the process, and writes nothing (the run goes on).
    second = cli(RUN, "--resume", str(run_dir), "--no-progress-bar", cwd=tmp_path)
    assert first.poll() is None, "the run ended before the second writer tried: raise STEPS"
    assert second.returncode == 2, second.stderr[-3000:]
    assert f"{run_dir} is in use by pid {first.pid} on " in last_line(second)
    assert "--algo ppo --noise lattice" in last_line(second)  # the holder's command line
    assert len((run_dir / "command.txt").read_text().splitlines()) == 1
    assert not list(run_dir.glob("*before_resume*")) and not (run_dir / "error.txt").exists()

    # SIGTERM stops it as Ctrl-C does: a checkpoint, error.txt, a line on how to resume, exit 143.
    first.send_signal(signal.SIGTERM)
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 143, stderr[-3000:]
    assert f"terminated by SIGTERM: continue from the last checkpoint with  lattice-train --resume {run_dir}" in stdout
    error = (run_dir / "error.txt").read_text().splitlines()
    assert error[0].startswith("stopped at ") and "terminated by SIGTERM" in error[0]
    assert error[1].startswith("Resume from the checkpoint at ") and error[1].endswith(f"--resume {run_dir}")
    assert RunDir(run_dir).status() == error[0]
    saved = RunDir(run_dir).checkpoint_step_counts()
    assert len(saved) >= 2 and saved[-1] < STEPS and all(s % 128 == 0 for s in saved), saved

    # A config.yml edited since the checkpoint was trained: refused, naming the fields, nothing written.
    original = (run_dir / "config.yml").read_text()
    edited = load_yaml(run_dir / "config.yml")
    learning_rate = edited["hyperparams"]["learning_rate"]
    edited["noise"] = "isotropic"
    edited["hyperparams"]["learning_rate"] = 1e-3
    (run_dir / "config.yml").write_text(yaml.safe_dump(edited, sort_keys=False))
    before = snapshot(run_dir)
    result = cli(RUN, "--resume", str(run_dir), "--no-progress-bar", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    line = last_line(result)
    assert f"config.yml was edited after the checkpoint at {saved[-1]:,} steps was trained" in line
    assert f"hyperparams.learning_rate: {learning_rate!r} → 0.001" in line and "noise: 'lattice' → 'isotropic'" in line
    assert snapshot(run_dir) == before
    (run_dir / "config.yml").write_text(original)

    # Every checkpoint unreadable (in a copy of the folder): one line, exit 2, nothing set aside.
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    for model in (copy / "checkpoints").glob("rl_model_*_steps.zip"):
        model.write_bytes(model.read_bytes()[:100])
    result = cli(RUN, "--resume", str(copy), "--no-progress-bar", cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert (
        f"No checkpoint of {copy} can be used (rl_model_{saved[-1]}_steps.zip cannot be read (BadZipFile"
        in last_line(result)
    )
    assert not list(copy.rglob("*.damaged")) and len((copy / "command.txt").read_text().splitlines()) == 1

    # The newest checkpoint damaged: set aside with a warning, the one before it resumes, the run ends as planned.
    newest = run_dir / "checkpoints" / f"rl_model_{saved[-1]}_steps.zip"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    result = cli(RUN, "--resume", str(run_dir), "--no-progress-bar", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        f"warning: {newest} cannot be read (" in result.stderr
        and f"set aside as {newest.name}.damaged" in result.stderr
    )
    assert f"from checkpoint at {saved[-2]:,} steps" in result.stdout
    assert newest.with_name(newest.name + ".damaged").is_file()
    summary = load_yaml(run_dir / "summary.yml")
    assert summary["timesteps"] == STEPS and summary["noise"] == "lattice"
    assert not (run_dir / "error.txt").exists() and RunDir(run_dir).status() == "finished"
    assert len((run_dir / "command.txt").read_text().splitlines()) == 2  # the start and the one resume that ran
    assert "likely diverging" not in stderr + result.stderr  # a healthy run gets no update-size warning


def test_diverging_ppo_updates_are_reported_once(tmp_path):
    """Lattice-PPO with 128 muscles at learning rate 3e-4: approx-KL in the hundreds from the first updates (the
    README's finding); the run says so once, on stderr and in progress.csv, and trains on."""
    log_dir = tmp_path / "logs"
    result = cli(
        RUN,
        *("--algo", "ppo", "--noise", "lattice", "--env", "overactuated", "-n", "1536", "--n-envs", "1"),
        *("--eval-freq", "1536", "--eval-episodes", "1", "--log-dir", str(log_dir), "--no-progress-bar"),
        *("--hyperparams", "n_steps=128", "batch_size=64", "env_kwargs.n_actuators=128", "learning_rate=3e-4"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("training is likely diverging") == 1
    assert "5 updates in a row" in result.stderr and "target_kl" in result.stderr
    progress = pd.read_csv(only_run_dir(log_dir) / "progress.csv")
    assert progress["train/updates_too_large"].sum() == 1
    assert (progress["train/approx_kl"].dropna() > 1.0).sum() >= 5


def test_sigterm_to_the_whole_process_group_with_env_workers(tmp_path):
    """What SLURM does at a time limit: SIGTERM to every process of the job. The env worker processes leave it to
    the training process, which saves, says how to resume and exits 143 (and does not hang on its workers)."""
    log_dir = tmp_path / "logs"
    args = [
        RUN,
        *("--algo", "ppo", "--noise", "lattice", "--env", "Pendulum-v1", "-n", "1000000", "--n-envs", "2"),
        *("--vec-env", "subproc", "--eval-freq", "100000", "--eval-episodes", "1", "--save-freq", "512"),
        *("--log-dir", str(log_dir)),
        *("--no-progress-bar", "--hyperparams", "n_steps=128", "batch_size=64", "max_episode_steps=100"),
    ]
    proc = subprocess.Popen([sys.executable, *args], cwd=tmp_path, env=dict(os.environ), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and not list(log_dir.glob("*/*/checkpoints/rl_model_1024_steps.zip")):
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr[-3000:]
    run_dir = only_run_dir(log_dir)
    assert f"terminated by SIGTERM: continue from the last checkpoint with  lattice-train --resume {run_dir}" in stdout
    assert "terminated by SIGTERM" in (run_dir / "error.txt").read_text().splitlines()[0]
    assert "Traceback" not in stderr  # no env worker died of the signal


class _SignalsWhenCollected:
    """An object whose finalizer sends this process a signal and runs on: Python runs the signal's handler inside
    the finalizer and discards the exception it raises, as when a signal arrives during a garbage collection."""

    def __init__(self, signum: int):
        self.signum = signum

    def __del__(self) -> None:
        os.kill(os.getpid(), self.signum)
        for _ in range(100):  # bytecodes after the signal: the handler runs between two of them
            pass


class _SignalInAFinalizer(BaseCallback):
    """After the run's first evaluation past step 0, one signal sent from inside a finalizer."""

    def __init__(self, signum: int):
        super().__init__()
        self.signum = signum
        self.sent_at: int | None = None
        self.went_on = False

    def _on_step(self) -> bool:
        if self.sent_at is None and self.num_timesteps > 0:
            self.sent_at = self.num_timesteps
            _SignalsWhenCollected(self.signum)  # dropped at once: its finalizer runs here
            self.went_on = True  # the handler's exception did not get here
        return True


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the discarded exception
@pytest.mark.parametrize(
    "signum, why, exit_code",
    [(signal.SIGINT, "interrupted (Ctrl-C)", 130), (signal.SIGTERM, "terminated by SIGTERM", 143)],
)
def test_a_stop_signal_that_arrives_in_a_finalizer_still_stops_the_run(tmp_path, signum, why, exit_code):
    """Python discards an exception raised in a finalizer, so a Ctrl-C or SIGTERM that arrives while one runs would
    be lost and the run train on to its end; the run stops at the next step instead, as on any other stop."""
    assert threading.current_thread() is threading.main_thread(), "signal handlers run in the main thread only"
    config = resolve_config(
        "ppo",
        "lattice",
        "elbow",
        overrides=dict(timesteps=4096, n_envs=1, eval_freq=256, eval_episodes=1, save_freq=64),
        hyperparams=["n_steps=64", "batch_size=32", "max_episode_steps=20"],
    )
    sender = _SignalInAFinalizer(signum)
    with stop_signals_as_interrupt(), pytest.raises(RunStopped) as stopped:
        start_run(config, tmp_path / "logs", after_eval=sender)
    assert sender.went_on  # the signal's exception was discarded where the handler raised it
    assert pending_stop() is None  # forgotten outside the block
    assert (stopped.value.why, stopped.value.exit_code) == (why, exit_code)
    run = RunDir(stopped.value.run_dir)
    assert not (run / "summary.yml").exists()
    # The signal came at step 256, the end of a rollout (n_steps 64); the run stopped inside the next rollout (a
    # checkpoint every rollout: a later stop would have left one at 320) and saved its first step to resume from.
    assert sender.sent_at == 256
    assert run.checkpoint_step_counts() == [64, 128, 192, 256]
    error = (run / "error.txt").read_text().splitlines()
    assert error[0] == f"stopped at 256 steps: {why}; a checkpoint was saved at 256 steps"
    assert error[1] == f"Resume from the checkpoint at 256 steps with: lattice-train --resume {run.path}"
