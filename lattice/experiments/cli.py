"""The commands of the experiment layer: ``lattice-train``, ``lattice-sweep``, ``lattice-tune``, ``lattice-plot``,
``lattice-render`` and ``lattice-enjoy`` (the package's console scripts; ``experiments/{run,sweep,tune,plot,render,
enjoy}.py`` in the repository call the same functions).

Each parses its arguments, applies the process settings (``lattice.experiments.process``) and makes one call into
the library. Bad input (``lattice.experiments.errors.UsageError``) exits with code 2 and one line on stderr; each
command maps its errors to exit codes in one ``try`` around that call. The run-setting flags of ``lattice-train``
are generated from the settings' declaration (``add_setting_flags``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from lattice.experiments.errors import UsageError, fail
from lattice.experiments.process import Terminated, configure_process, stop_signals_as_interrupt

try:
    from lattice.experiments.load import CONFIG_DIR, yaml_value
    from lattice.experiments.settings import SETTINGS, default_text
except ImportError as e:  # a core install: the console scripts exist, the experiment layer's dependencies do not
    raise SystemExit(
        f"error: the lattice-* commands need the experiment layer: pip install 'sb3-lattice[experiments]' ({e})"
    ) from None

TRAIN_HELP = """Train one algorithm x noise x task and write a run folder (its layout: lattice.experiments.rundir).

Examples:
    lattice-train --algo sac --noise lattice --env ant -n 100000
    lattice-train --algo ppo --noise gsde --env reorient --seed 3
    lattice-train --algo ppo --noise lattice --env myoHandReorient8-v0 --hyperparams n_steps=256
    lattice-train --config logs/sac/Ant-v5_1/config.yml          # repeat a run exactly
    lattice-train --resume logs/sac/Ant-v5_1                     # continue an interrupted run
    lattice-train --algo ppo --noise lattice --env mytask --config-dir my_configs   # a task file of one's own

Settings come from their declared defaults, then defaults.yaml, then the task's file (--config-dir first, then the
packaged configs), then the flags, then --hyperparams. A flag's value is YAML, as in --hyperparams: --normalize
false, --env-kwargs '{goal_pos: [0, 0]}', -n 2e6. Bad input exits with code 2 and creates nothing.
"""


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """A flag per run setting (``settings.SETTINGS``): ``--name`` (dashes for underscores), a YAML value, the
    help ending with the declared default. A flag not given is absent from the parsed arguments, so that only the
    flags given override the config files (``setting_flags``). ``hyperparams`` is ``--hyperparams KEY=VALUE ...``."""
    group = parser.add_argument_group("run settings (each also a config key and a --hyperparams key)")
    for s in SETTINGS:
        if s.name == "hyperparams":
            group.add_argument(
                "--hyperparams",
                nargs="+",
                default=[],
                metavar="KEY=VALUE",
                help="override settings, YAML values, dotted keys: learning_rate=1e-4 policy_kwargs.alpha=0.5 "
                f"normalize=false ({s.help}; default: {default_text(s)})",
            )
            continue
        where = "; only for noises " + ", ".join(s.noises) if s.noises is not None else ""
        group.add_argument(
            *([s.short] if s.short else []),
            s.flag,
            dest=s.name,
            type=yaml_value,
            default=argparse.SUPPRESS,
            metavar=s.name.upper(),
            help=f"{s.help}: {s.valid()}{where} (default: {default_text(s)})".replace("%", "%%"),
        )


def setting_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings given as flags (``add_setting_flags``): setting name → value."""
    return {s.name: getattr(args, s.name) for s in SETTINGS if s.name != "hyperparams" and hasattr(args, s.name)}


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lattice-train", description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--config", type=Path, help="YAML config: a task file, or a run's config.yml to repeat it")
    p.add_argument(
        "--config-dir",
        type=Path,
        default=CONFIG_DIR,
        help="a folder of task files (and optionally defaults.yaml) searched before the packaged ones",
    )
    p.add_argument("--log-dir", type=Path, default=Path("logs"), help="runs go to LOG_DIR/<algo>/<env>_<N>/")
    p.add_argument("--wandb", action="store_true", help="log to Weights & Biases (offline without an API key)")
    p.add_argument("--wandb-project", default="lattice", help="wandb project")
    p.add_argument("--wandb-entity", help="wandb entity (user or team)")
    p.add_argument("--video", action="store_true", help="render the best policy to RUN_DIR/videos/ at the end")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    p.add_argument("--no-progress-bar", action="store_true", help="hide the progress bar")
    add_setting_flags(p)
    return p


def train_main(argv: list[str] | None = None) -> int:
    """``lattice-train``: one training run (or ``--resume`` one)."""
    args = train_parser().parse_args(argv)
    if args.config_dir != CONFIG_DIR and not args.config_dir.is_dir():
        return fail(f"--config-dir {args.config_dir}: no such folder")
    configure_process()
    from lattice.experiments.training import RunStopped

    train_kwargs = dict(
        progress_bar=not args.no_progress_bar,
        wandb_project=args.wandb_project if args.wandb else None,
        wandb_entity=args.wandb_entity,
        video=args.video,
    )
    try:
        with stop_signals_as_interrupt():  # a scheduler's SIGTERM stops the run as Ctrl-C does
            run_dir, summary = _train_or_resume(args, train_kwargs)
    except UsageError as e:
        return fail(e)
    except RunStopped as e:
        print(f"\n{e.why}: continue from the last checkpoint with  lattice-train --resume {e.run_dir}", flush=True)
        return e.exit_code
    except KeyboardInterrupt as e:  # outside SB3's learn: while setting up, or finishing
        why = str(e) if isinstance(e, Terminated) else "interrupted (Ctrl-C)"
        print(f"\n{why} outside training: continue a run folder it left with  lattice-train --resume RUN_DIR")
        return 143 if isinstance(e, Terminated) else 130
    final = summary["final_eval"]
    print(f"done: {run_dir} | final return {final['return_mean']:.2f} ± {final['return_std']:.2f}", flush=True)
    return 0


def _train_or_resume(args: argparse.Namespace, train_kwargs: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """``lattice-train``'s work: resume ``--resume``'s run, or resolve the config and start a new run."""
    from lattice.experiments.errors import ConfigError
    from lattice.experiments.training import resume_run, start_run
    from lattice.experiments.validate import resolve_run_config

    if args.resume is not None:
        defaults = vars(train_parser().parse_args([]))
        kept = ("resume", "no_progress_bar", "wandb", "wandb_project", "wandb_entity", "video")
        settings = setting_flags(args)  # the run settings first, in their declared order
        given = [f"--{k.replace('_', '-')}" for k in settings] + [
            f"--{k.replace('_', '-')}"
            for k, v in vars(args).items()
            if k not in kept and k not in settings and v != defaults[k]
        ]
        if given:
            raise ConfigError(f"--resume continues a run with its own config; drop {', '.join(given)}")
        return args.resume, resume_run(args.resume, **train_kwargs)
    flags = setting_flags(args)
    chosen = {name: flags.pop(name, None) for name in ("algo", "noise", "env")}
    config = resolve_run_config(
        chosen["algo"], chosen["noise"], chosen["env"], args.config, flags, args.hyperparams, args.config_dir
    )
    recorded = {s.name: None for s in SETTINGS} | vars(args)
    recorded = {k: str(v) if isinstance(v, Path) else v for k, v in recorded.items()}
    return start_run(config.as_dict(), args.log_dir, recorded, **train_kwargs)


SWEEP_HELP = """Run a sweep (algorithm x noise x task x seeds, and any setting) on Dask; the same command again
continues it.

Examples:
    lattice-sweep --config configs/sweeps/tiny.yaml                      # embedded cluster, this machine
    lattice-sweep --config tiny                                          # a packaged sweep file, by name
    lattice-sweep --config configs/sweeps/paper_myosuite.yaml --max-concurrent 4
    lattice-sweep --config configs/sweeps/paper_ant.yaml --scheduler tcp://10.0.0.5:8786
    lattice-sweep --config configs/sweeps/paper_myosuite.yaml --slurm    # the file's slurm: block

Trials go to LOG_DIR/<name>/trials/<algo>_<noise>_<env>_seed<k>/ (run folders of lattice-train); the grid is in
sweep.yml, the outcome of each trial in results.yml. Report with: lattice-plot LOG_DIR/<name>
Exit code: 0 when every trial finished, 1 when some failed (after Dask's retries), 2 on a bad sweep file, 3 when no
worker joined for slurm.worker_wait, 130 on Ctrl-C and 143 on SIGTERM (the running trials save a checkpoint first).
"""


def sweep_main(argv: list[str] | None = None) -> int:
    """``lattice-sweep``: run or continue a sweep."""
    p = argparse.ArgumentParser(
        prog="lattice-sweep", description=SWEEP_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--config", type=Path, required=True, help="sweep file, or the name of a packaged one (configs/sweeps/)"
    )
    p.add_argument("--log-dir", type=Path, default=Path("logs/sweeps"), help="sweeps go to LOG_DIR/<name>/")
    p.add_argument(
        "--progress-every",
        type=float,
        default=60.0,
        help="seconds between lines on the running trials and their latest evaluation (default: 60)",
    )
    _add_cluster_arguments(p)
    args = p.parse_args(argv)
    if args.max_concurrent is not None and args.max_concurrent <= 0:
        return fail(f"--max-concurrent must be positive, got {args.max_concurrent}")
    if args.progress_every <= 0:
        return fail(f"--progress-every must be positive (seconds), got {args.progress_every}")
    path = _packaged(args.config, "sweeps")
    configure_process()
    try:
        from lattice.experiments.cluster import NoWorkers
        from lattice.experiments.sweep import SweepStopped, run_sweep
    except ImportError as e:
        return fail(f"sweeps need Dask: pip install 'sb3-lattice[sweeps]' ({e})")
    try:
        with stop_signals_as_interrupt():  # SIGTERM (a scheduler, kill) stops the sweep as Ctrl-C does
            results = run_sweep(
                path, args.log_dir, args.max_concurrent, args.scheduler, args.slurm, args.progress_every
            )
    except UsageError as e:
        return fail(e)
    except (SweepStopped, NoWorkers, KeyboardInterrupt) as e:
        return _stopped(e, "sweep", argv)
    return 1 if any(r["status"] == "failed" for r in results.values()) else 0


def _stopped(e: BaseException, what: str, argv: list[str] | None) -> int:
    """One line for a sweep or tuning that stopped before its end, saying how to continue; its exit code."""
    from lattice.experiments.cluster import NoWorkers

    command = {"sweep": "lattice-sweep", "tuning": "lattice-tune"}[what]
    again = f"run the same command to continue:  {shlex.join([command, *(sys.argv[1:] if argv is None else argv)])}"
    if isinstance(e, NoWorkers):
        print(f"error: the {what} stopped: {e}; {again}", file=sys.stderr, flush=True)
        return 3
    why = getattr(e, "why", None) or str(e) or "interrupted (Ctrl-C)"
    saved = getattr(e, "trials", [])
    running = f"; {len(saved)} running trial(s) saved a checkpoint" if saved else ""
    print(f"\n{what} stopped ({why}){running}; {again}", file=sys.stderr, flush=True)
    return getattr(e, "exit_code", 143 if isinstance(e, Terminated) else 130)


TUNE_HELP = """Tune each exploration noise with the same budget: an Optuna study per noise (the same search space and
number of trials for each; median pruning on the evaluations), on the sweeps' Dask engine; the same command again
continues.

Examples:
    lattice-tune --config elbow_ppo                                      # a packaged tuning file (configs/tune/)
    lattice-tune --config my_tuning.yaml --max-concurrent 4
    lattice-tune --config my_tuning.yaml --scheduler tcp://10.0.0.5:8786 --storage postgresql://db/optuna

Then: lattice-sweep --config LOG_DIR/<name>/seeds.yaml   (the tuned configs over new seeds)
      lattice-plot LOG_DIR/<name>_seeds                    (curves and final values with 95% intervals)
Writes into LOG_DIR/<name>/: study.db, trials.csv, best.md, best/<algo>_<noise>_<env>.yml (for --config),
seeds.yaml, history.png, importance.png; each trial is a run folder in trials/<noise>/<number>/. With --out,
those outputs (not the studies or trials) go there too, e.g. a results folder to commit:
      lattice-tune --config elbow_ppo --out results/tuned/elbow/tuning
Exit code: 0 when done, 1 when some trials failed, 2 on a bad tuning file, 3 when no worker joined for
slurm.worker_wait, 130 on Ctrl-C and 143 on SIGTERM (the running trials save a checkpoint first).
"""


def tune_main(argv: list[str] | None = None) -> int:
    """``lattice-tune``: run or continue a hyperparameter search per noise."""
    p = argparse.ArgumentParser(
        prog="lattice-tune", description=TUNE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--config", type=Path, required=True, help="tuning file, or the name of a packaged one (configs/tune/)"
    )
    p.add_argument("--log-dir", type=Path, default=Path("logs/tune"), help="studies go to LOG_DIR/<name>/")
    p.add_argument("--storage", help="RDB URL of the studies (default: SQLite in the study folder)")
    p.add_argument("--out", type=Path, help="also write the outputs (not the studies or trials) into this folder")
    _add_cluster_arguments(p)
    args = p.parse_args(argv)
    if args.max_concurrent is not None and args.max_concurrent <= 0:
        return fail(f"--max-concurrent must be positive, got {args.max_concurrent}")
    path = _packaged(args.config, "tune")
    configure_process()
    try:
        import distributed  # noqa: F401  (tune.py imports them where they are used)
        import optuna

        from lattice.experiments.cluster import NoWorkers
        from lattice.experiments.sweep import SweepStopped
        from lattice.experiments.tune import run_tuning
    except ImportError as e:
        return fail(f"tuning needs Optuna and Dask: pip install 'sb3-lattice[sweeps]' ({e})")
    # The command prints its own line per trial; Optuna's INFO lines would repeat them. Set here, in the command's
    # own process, so that calling the library leaves Optuna's logging as its caller set it.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with stop_signals_as_interrupt():  # SIGTERM (a scheduler, kill) stops the tuning as Ctrl-C does
            table = run_tuning(
                path, args.log_dir, args.max_concurrent, args.scheduler, args.slurm, args.storage, args.out
            )
    except UsageError as e:
        return fail(e)
    except (SweepStopped, NoWorkers, KeyboardInterrupt) as e:
        return _stopped(e, "tuning", argv)
    return 1 if (table["state"] == "fail").any() else 0


def _add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """Where trials run, for lattice-sweep and lattice-tune: the embedded cluster's size, or another cluster."""
    p.add_argument(
        "--max-concurrent",
        type=int,
        help="trials at once on the embedded cluster (default: as many as the cores fit, given resources.cpus)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
    where.add_argument("--slurm", action="store_true", help="start Dask workers as SLURM jobs (dask-jobqueue)")


def _packaged(path: Path, kind: str) -> Path:
    """``path``, or the packaged file of that name in ``configs/<kind>/`` when ``path`` is a bare name."""
    packaged = CONFIG_DIR / kind / f"{path}.yaml"
    return packaged if not path.exists() and path.suffix == "" and packaged.is_file() else path


PLOT_HELP = """Reports over run folders (single runs or whole sweeps), or again from the evaluations.csv of an earlier
report: curves across seeds, final values with 95% intervals, each noise against a baseline.

Examples:
    lattice-plot logs/ppo --out reports/elbow
    lattice-plot logs/ppo/myoElbowPose1D6MRandom-v0_1 logs/ppo/myoElbowPose1D6MRandom-v0_2 --statistic iqm
    lattice-plot logs/sweeps/hand_pen --out results/hand_pen --windows 2   # also the first and second half's means
    lattice-plot results/hand_pen/evaluations.csv --out results/hand_pen --windows 2   # the same, without the runs
    lattice-plot logs/sweeps/elbow_ppo_seeds --out results/tuned/elbow/at_20480 --steps 20480   # at a shorter budget

Intervals: --statistic mean (default) gives the mean over seeds with Student's t-interval, and against the
baseline Welch's t-interval and p-value of the difference and Fieller's interval of the energies' ratio; --statistic
iqm gives the interquartile mean with rliable's stratified bootstrap intervals. Both give the probability of
improvement over the baseline (rliable's), with its stratified bootstrap interval.

Writes into --out: <env>.png per environment (evaluation return, success and energy vs env steps, one line per
algorithm x noise with its 95% band across seeds; final values as bars with intervals), final.md (a markdown table:
estimate [95% CI] and each seed's value per metric, the number of seeds; then each noise against --baseline: the
difference in return and success, the relative change in energy, with 95% intervals; each task's chance baselines,
a zero-action and a random policy evaluated as the runs were, also dashed in the figures, unless --no-chance; the
energy by success rate, beside the untrained policies' at step 0), final.csv, comparison.csv, chance.csv
and evaluations.csv; with --windows N also windows.csv and its table in final.md (each run's mean over its
evaluations in each of N equal spans of training, then across seeds with 95% intervals). Only finished runs are
reported; final.md lists the others (stopped by an error, or still running) with their last evaluation, and
--unfinished reports them at it. Run folders that cannot be read (an emptied config.yml, a damaged
evaluations.npz) are skipped and listed. The same input gives byte-identical files. Bad input exits with code 2.
"""


def plot_main(argv: list[str] | None = None) -> int:
    """``lattice-plot``: a report over run folders."""
    p = argparse.ArgumentParser(
        prog="lattice-plot", description=PLOT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "paths",
        type=Path,
        nargs="+",
        help="run folders, or folders that contain run folders; or instead the evaluations.csv of earlier reports",
    )
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports/)")
    p.add_argument("--statistic", choices=["mean", "iqm"], default="mean", help="across seeds (default mean)")
    p.add_argument(
        "--baseline",
        help="noise the others are compared with (default isotropic; a noise given here must be among the runs)",
    )
    p.add_argument("--unfinished", action="store_true", help="also report unfinished runs, at their last evaluation")
    p.add_argument(
        "--steps",
        type=int,
        help="report each run as it was at N steps: its evaluations up to N (its update sizes stay its whole run's)",
    )
    p.add_argument(
        "--no-chance",
        dest="chance",
        action="store_false",
        help="leave out the chance baselines (each task's zero and random policies, evaluated as the runs were)",
    )
    p.add_argument(
        "--windows",
        type=int,
        default=0,
        metavar="N",
        help="also tabulate the curves' means over N equal spans of training, in final.md and windows.csv (default 0)",
    )
    args = p.parse_args(argv)
    configure_process()
    from lattice.experiments.report import write_report

    missing = [str(path) for path in args.paths if not path.exists()]
    if missing:
        return fail(f"no such folder or file: {', '.join(missing)}")
    baseline = args.baseline or "isotropic"
    try:
        written = write_report(
            args.paths,
            args.out,
            args.statistic,
            baseline,
            args.unfinished,
            baseline_required=args.baseline is not None,
            windows=args.windows,
            chance=args.chance,
            steps=args.steps,
        )
    except (FileNotFoundError, UsageError) as e:
        return fail(str(e))
    except OSError as e:  # --out cannot be written
        return fail(f"--out {args.out}: cannot write the report there ({e.strerror or e})")
    print("\n".join(map(str, written)))
    print((args.out / "final.md").read_text())
    return 0


RENDER_HELP = """Render deterministic rollouts of a trained policy from its run folder to MP4 (headless).

Examples:
    lattice-render logs/sac/Ant-v5_1                        # best model, 1 episode
    lattice-render logs/ppo/myoChallengeDieReorientP2-v0_2 --model final --episodes 3
    lattice-render logs/sac/Ant-v5_1 --model 50000 --out videos/ant_50k.mp4

The video plays at the env's control rate (1 / control step). Bad input exits with code 2.
"""


def render_main(argv: list[str] | None = None) -> int:
    """``lattice-render``: a rollout video of a run's policy."""
    p = argparse.ArgumentParser(
        prog="lattice-render", description=RENDER_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run_dir", type=Path, help="a run folder of lattice-train")
    p.add_argument("--model", default="best", help="best, final, or a checkpoint's step count (default best)")
    p.add_argument("--episodes", type=int, default=1, help="episodes to render, one after the other (default 1)")
    p.add_argument("--out", type=Path, help="MP4 path (default RUN_DIR/videos/<model>.mp4)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps in all")
    p.add_argument("--size", type=int, nargs=2, default=(480, 360), metavar=("WIDTH", "HEIGHT"), help="pixels")
    p.add_argument("--seed", type=int, help="seed of the rendered env (default: the run's evaluation seed)")
    args = p.parse_args(argv)
    configure_process()
    from lattice.experiments.video import render_run

    try:
        out = render_run(args.run_dir, args.model, args.episodes, args.out, args.max_steps, tuple(args.size), args.seed)
    except UsageError as e:
        return fail(e)
    print(out)
    return 0


ENJOY_HELP = """Evaluate a saved policy of a run folder: return, success and energy over N episodes, with the run's own
normalisation statistics (those saved with that model); optionally render them to MP4.

Examples:
    lattice-enjoy logs/ppo/myoElbowPose1D6MRandom-v0_1                    # best model, 10 episodes
    lattice-enjoy logs/sac/Ant-v5_1 --model final --episodes 20 --seed 7
    lattice-enjoy logs/sac/Ant-v5_1 --render                              # and RUN_DIR/videos/<model>.mp4

Prints one line per episode and a summary line. Bad input exits with code 2.
"""


def enjoy_main(argv: list[str] | None = None) -> int:
    """``lattice-enjoy``: evaluate a run's saved policy over N episodes."""
    p = argparse.ArgumentParser(
        prog="lattice-enjoy", description=ENJOY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("run_dir", type=Path, help="a run folder of lattice-train")
    p.add_argument("--model", default="best", help="best, final, or a checkpoint's step count (default best)")
    p.add_argument("-n", "--episodes", type=int, default=10, help="episodes (default 10)")
    p.add_argument("--seed", type=int, help="seed of the env (default: the run's evaluation seed)")
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the deterministic policy")
    p.add_argument("--render", action="store_true", help="also render the episodes to RUN_DIR/videos/<model>.mp4")
    args = p.parse_args(argv)
    if args.stochastic and args.render:
        return fail("--render shows the deterministic policy; drop --stochastic or --render")
    configure_process()
    from lattice.experiments.playback import evaluate_run

    try:
        episodes = evaluate_run(args.run_dir, args.model, args.episodes, args.seed, not args.stochastic)
        for i, (ret, length) in enumerate(zip(episodes.returns, episodes.lengths, strict=True)):
            line = f"episode {i + 1:3d} | return {ret:9.2f} | length {length}"
            if episodes.successes:
                line += f" | success {int(episodes.successes[i])}"
            line += "".join(f" | {k.removeprefix('ep_')} {v[i]:.4f}" for k, v in episodes.energy.items())
            print(line)
        print(f"{args.model} model of {args.run_dir}, {len(episodes.returns)} episodes | {episodes.line()}", flush=True)
        if args.render:
            from lattice.experiments.video import render_run

            print(render_run(args.run_dir, args.model, args.episodes, seed=args.seed))
    except UsageError as e:
        return fail(e)
    return 0
