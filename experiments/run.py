"""Train one algorithm x noise x task and write a run folder (see lattice/training.py for its contents).

Examples:
    python experiments/run.py --algo sac --noise lattice --env ant -n 100000
    python experiments/run.py --algo ppo --noise gsde --env reorient --seed 3
    python experiments/run.py --algo ppo --noise lattice --env myoHandReorient8-v0 --hyperparams n_steps=256
    python experiments/run.py --config logs/sac/Ant-v5_1/config.yml          # repeat a run exactly
    python experiments/run.py --resume logs/sac/Ant-v5_1                     # continue an interrupted run

Settings come from configs/defaults.yaml, then the task's file in configs/, then the flags, then --hyperparams.
Bad input exits with code 2 and creates nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lattice.config import ALGOS, ConfigError, resolve_config
from lattice.noise import NOISES


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=list(ALGOS), help="algorithm (default: the --config file's)")
    p.add_argument(
        "--noise", help=f"exploration noise: {', '.join(f'{n} ({s.description})' for n, s in NOISES.items())}"
    )
    p.add_argument(
        "--env", help="task (ant, reorient, pen, elbow: a file in configs/) or a gymnasium id (default: ant)"
    )
    p.add_argument("--config", type=Path, help="YAML config: a task file, or a run's config.yml to repeat it")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("-n", "--timesteps", type=int, help="total environment steps (default 1M; the paper: 10M-20M)")
    p.add_argument("--n-envs", type=int, help="parallel training envs (default: the task's)")
    p.add_argument(
        "--noise-period",
        type=int,
        help="T: steps between redraws of gsde/lattice noise (sde_sample_freq; -1: per rollout)",
    )
    p.add_argument(
        "--hyperparams",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override settings, YAML values, dotted keys: learning_rate=1e-4 policy_kwargs.alpha=0.5 normalize=false",
    )
    p.add_argument("--eval-freq", type=int, help="environment steps between evaluations (default 10000)")
    p.add_argument("--eval-episodes", type=int, help="episodes per evaluation (default 10)")
    p.add_argument("--save-freq", type=int, help="environment steps between checkpoints (default 50000)")
    p.add_argument("--device", help="torch device: auto, cpu, cuda (default auto)")
    p.add_argument("--log-dir", type=Path, default=Path("logs"), help="runs go to LOG_DIR/<algo>/<env>_<N>/")
    p.add_argument("--wandb", action="store_true", help="log to Weights & Biases (offline without an API key)")
    p.add_argument("--wandb-project", default="lattice", help="wandb project")
    p.add_argument("--wandb-entity", help="wandb entity (user or team)")
    p.add_argument("--video", action="store_true", help="render the best policy to RUN_DIR/videos/ at the end")
    p.add_argument("--resume", type=Path, metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    p.add_argument("--no-progress-bar", action="store_true", help="hide the progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from lattice.training import resume_run, start_run  # after parsing: --help stays fast

    train_kwargs = dict(
        progress_bar=not args.no_progress_bar,
        wandb_project=args.wandb_project if args.wandb else None,
        wandb_entity=args.wandb_entity,
        video=args.video,
    )
    try:
        if args.resume is not None:
            defaults = vars(parser().parse_args([]))
            kept = ("resume", "no_progress_bar", "wandb", "wandb_project", "wandb_entity", "video")
            given = [f"--{k.replace('_', '-')}" for k, v in vars(args).items() if k not in kept and v != defaults[k]]
            if given:
                raise ConfigError(f"--resume continues a run with its own config; drop {', '.join(given)}")
            run_dir, summary = args.resume, resume_run(args.resume, **train_kwargs)
        else:
            overrides = dict(
                seed=args.seed,
                timesteps=args.timesteps,
                n_envs=args.n_envs,
                noise_period=args.noise_period,
                eval_freq=args.eval_freq,
                eval_episodes=args.eval_episodes,
                save_freq=args.save_freq,
                device=args.device,
            )
            env = args.env or (None if args.config else "ant")
            config = resolve_config(args.algo, args.noise, env, args.config, overrides, args.hyperparams)
            recorded = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
            run_dir, summary = start_run(config, args.log_dir, recorded, **train_kwargs)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: continue from the last checkpoint with  python experiments/run.py --resume RUN_DIR")
        return 130
    final = summary["final_eval"]
    print(f"done: {run_dir} | final return {final['return_mean']:.2f} ± {final['return_std']:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
