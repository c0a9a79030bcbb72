"""``make videos``: the README's gallery, rendered from the hand sweeps' runs (``configs/sweeps/hand_reorient.yaml``
and ``configs/sweeps/hand_pen.yaml``).

For each task of the sweeps, its Lattice trial (T = 4, seed 0 by default) is rendered twice with the package's own
renderer: early in training (its first checkpoint) and its best evaluated policy after that (the checkpoint whose
evaluation had the highest mean return: ``best_model.zip`` can be the first checkpoint itself when evaluations are
noisy). Each gives an MP4 in ``videos/`` and a strip of frames (PNG, early above best) that the README shows
inline. A trial that has not finished in ``<log dir>/<sweep>/trials/`` is trained first, exactly as
``lattice-sweep`` would (the same folder, so the sweep later skips it).

    python experiments/videos.py                         # videos/ from logs/sweeps/hand_reorient and hand_pen
    python experiments/videos.py --sweep configs/sweeps/hand_reorient.yaml     # the reorient videos only
    python experiments/videos.py --sweep configs/sweeps/tiny.yaml --out /tmp/videos --episodes 1

Bad input exits with code 2 and writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lattice.experiments.errors import ConfigError, RunFolderError, UsageError, fail
from lattice.experiments.load import load_yaml
from lattice.experiments.process import configure_process
from lattice.experiments.rundir import RunDir, temporary

ROOT = Path(__file__).resolve().parent.parent
STRIP_FRAMES = 6  # frames per row of a strip, evenly spaced over the video


def chosen_trials(
    sweep: dict, base: Path, noise: str, noise_period: int | None, seed: int
) -> dict[str, tuple[str, dict]]:
    """Per env of the sweep: the trial name and config of ``noise`` with ``noise_period`` and ``seed``.

    :param noise_period: As the resolved configs record it: None for a noise that is not state-dependent.
    :param base: The sweep file's folder (config files in its grid are relative to it).
    """
    from lattice.experiments.sweep import expand

    chosen: dict[str, tuple[str, dict]] = {}
    for name, config in expand(sweep, base).items():
        if (config["noise"], config["noise_period"], config["seed"]) == (noise, noise_period, seed):
            chosen.setdefault(str(config["env"]).rsplit("/", 1)[-1], (name, config))
    if not chosen:
        raise ConfigError(
            f"The sweep {sweep['name']!r} has no trial of {noise} with noise_period {noise_period} and seed {seed}"
        )
    return chosen


def chosen_across_sweeps(
    sweep_files: list[Path], noise: str, noise_period: int | None, seed: int
) -> list[tuple[str, str, dict, dict, Path]]:
    """``(task, trial name, trial config, sweep, sweep file)`` for each task of the sweeps.

    Two sweeps with the same task would write the same video files, so that is refused.
    """
    picked: dict[str, tuple[str, str, dict, dict, Path]] = {}
    for sweep_file in sweep_files:
        sweep = load_yaml(sweep_file)
        for task, (name, config) in chosen_trials(sweep, sweep_file.parent, noise, noise_period, seed).items():
            if task in picked:
                raise ConfigError(
                    f"Two sweeps have the task {task} ({picked[task][4]} and {sweep_file}): their videos would "
                    "overwrite each other; pass one of them with --sweep"
                )
            picked[task] = (task, name, config, sweep, sweep_file)
    return list(picked.values())


def early_and_best(run: RunDir) -> tuple[int, int]:
    """Step counts of a run's first checkpoint and of the later checkpoint with the highest mean evaluation return."""
    steps = run.checkpoint_step_counts()
    evaluations = run.evaluations()
    if not evaluations:
        raise RunFolderError(f"{run}: no evaluations.npz; the videos need a run with evaluations")
    returns = dict(zip(evaluations["timesteps"].tolist(), evaluations["results"].mean(axis=1), strict=True))
    later = [step for step in steps[1:] if step in returns]
    if not later:
        raise RunFolderError(f"{run}: no evaluated checkpoint after the first ({steps}); set save_freq to eval_freq")
    return steps[0], max(later, key=returns.__getitem__)


def strip(rows: list[list[np.ndarray]]) -> np.ndarray:
    """One image: a row per video, ``STRIP_FRAMES`` frames of each, evenly spaced from first to last."""
    picked = [[frames[i] for i in np.linspace(0, len(frames) - 1, STRIP_FRAMES).round().astype(int)] for frames in rows]
    return np.concatenate([np.concatenate(row, axis=1) for row in picked], axis=0)


def main(argv: list[str] | None = None) -> int:
    from lattice.experiments.settings import SETTING

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--sweep",
        type=Path,
        nargs="+",
        default=[ROOT / "configs" / "sweeps" / f"hand_{task}.yaml" for task in ("reorient", "pen")],
        help="the sweep files, one video pair per task (default: hand_reorient.yaml and hand_pen.yaml)",
    )
    p.add_argument("--log-dir", type=Path, default=Path("logs/sweeps"), help="where the sweep's folder is")
    p.add_argument("--out", type=Path, default=ROOT / "videos", help="output folder (default videos/)")
    p.add_argument("--noise", default="lattice", help="the noise of the rendered trials (default: lattice)")
    for name in ("noise_period", "seed"):  # as the run settings declare them
        setting = SETTING[name]
        p.add_argument(
            setting.flag, type=int, default=setting.default, help=f"{setting.help} (default: {setting.default})"
        )
    p.add_argument("--episodes", type=int, default=8, help="episodes per video, one after the other (default 8)")
    p.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("WIDTH", "HEIGHT"))
    args = p.parse_args(argv)
    configure_process()
    from lattice.experiments.sweep import run_trial
    from lattice.experiments.validate import noise_period_for
    from lattice.experiments.video import check_video_path, rollout_frames, write_video

    try:
        SETTING["noise"].check(args.noise)
        period = noise_period_for(args.noise, args.noise_period)  # None for a noise that is not state-dependent
        trials = chosen_across_sweeps(args.sweep, args.noise, period, args.seed)
        check_video_path(args.out / "probe.mp4")
    except (UsageError, FileNotFoundError) as e:
        return fail(str(e))
    for task, name, config, sweep, sweep_file in trials:
        run_dir = args.log_dir / sweep["name"] / "trials" / name
        if RunDir(run_dir).finished_summary() is None:
            print(f"training {name} (as lattice-sweep --config {sweep_file} would), into {run_dir}", flush=True)
            run_trial(config, str(run_dir), str(args.log_dir / sweep["name"] / "output" / f"{name}.log"))
        try:
            early, best = early_and_best(RunDir(run_dir))
        except UsageError as e:
            return fail(e)
        rows = []
        for which, label in ((early, "early"), (best, "best")):
            frames, fps = rollout_frames(run_dir, str(which), args.episodes, size=tuple(args.size))
            out = write_video(frames, fps, args.out / f"{task}_{label}.mp4")
            print(f"{out}: {name}, model {which}, {len(frames)} frames at {fps:g} fps", flush=True)
            rows.append(frames)
        import imageio.v2 as imageio

        picture = args.out / f"{task}.png"
        imageio.imwrite(temporary(picture), strip(rows))  # renamed into place, as the videos are
        temporary(picture).replace(picture)
        print(f"{picture}: {STRIP_FRAMES} frames of the early (top) and best (bottom) policy", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
