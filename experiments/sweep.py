"""Run a sweep (algorithm x noise x task x seeds, and any setting) on Dask; the same command again continues it.

Examples:
    python experiments/sweep.py --config configs/sweeps/tiny.yaml                      # embedded cluster, this machine
    python experiments/sweep.py --config configs/sweeps/paper_myosuite.yaml --max-concurrent 4
    python experiments/sweep.py --config configs/sweeps/paper_ant.yaml --scheduler tcp://10.0.0.5:8786
    python experiments/sweep.py --config configs/sweeps/paper_myosuite.yaml --slurm    # the file's slurm: block

Trials go to LOG_DIR/<name>/trials/<algo>_<noise>_<env>_seed<k>/ (run folders of experiments/run.py); the grid
is in sweep.yml, the outcome of each trial in results.yml. Report with: python experiments/plot.py LOG_DIR/<name>
Exit code: 0 when every trial finished, 1 when some failed (after Dask's retries), 2 on a bad sweep file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, required=True, help="sweep file (configs/sweeps/*.yaml)")
    p.add_argument("--log-dir", type=Path, default=Path("logs/sweeps"), help="sweeps go to LOG_DIR/<name>/")
    p.add_argument(
        "--max-concurrent",
        type=int,
        help="trials at once on the embedded cluster (default: as many as the cores fit, given resources.cpus)",
    )
    p.add_argument(
        "--progress-every",
        type=float,
        default=60.0,
        help="seconds between lines on the running trials and their latest evaluation (default: 60)",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://HOST:8786")
    where.add_argument("--slurm", action="store_true", help="start Dask workers as SLURM jobs (dask-jobqueue)")
    args = p.parse_args(argv)
    from lattice.config import ConfigError
    from lattice.sweep import run_sweep

    if args.max_concurrent is not None and args.max_concurrent <= 0:
        print(f"error: --max-concurrent must be positive, got {args.max_concurrent}", file=sys.stderr)
        return 2
    if args.progress_every <= 0:
        print(f"error: --progress-every must be positive (seconds), got {args.progress_every}", file=sys.stderr)
        return 2
    try:
        results = run_sweep(
            args.config, args.log_dir, args.max_concurrent, args.scheduler, args.slurm, args.progress_every
        )
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1 if any(r["status"] == "failed" for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
