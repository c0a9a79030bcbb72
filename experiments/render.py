"""Render deterministic rollouts of a trained policy from its run folder to MP4 (headless).

Examples:
    python experiments/render.py logs/sac/Ant-v5_1                        # best model, 1 episode
    python experiments/render.py logs/ppo/myoChallengeDieReorientP2-v0_2 --model final --episodes 3
    python experiments/render.py logs/sac/Ant-v5_1 --model 50000 --out videos/ant_50k.mp4

The video plays at the env's control rate (1 / control step). Bad input exits with code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lattice.config import ConfigError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path, help="a run folder of experiments/run.py")
    p.add_argument("--model", default="best", help="best, final, or a checkpoint's step count (default best)")
    p.add_argument("--episodes", type=int, default=1, help="episodes to render, one after the other (default 1)")
    p.add_argument("--out", type=Path, help="MP4 path (default RUN_DIR/videos/<model>.mp4)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps in all")
    p.add_argument("--size", type=int, nargs=2, default=(480, 360), metavar=("WIDTH", "HEIGHT"), help="pixels")
    p.add_argument("--seed", type=int, help="seed of the rendered env (default: the run's evaluation seed)")
    args = p.parse_args(argv)
    from lattice.video import render_run  # after parsing: --help stays fast

    try:
        out = render_run(args.run_dir, args.model, args.episodes, args.out, args.max_steps, tuple(args.size), args.seed)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
