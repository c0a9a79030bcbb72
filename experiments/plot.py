"""Reports over run folders (single runs or whole sweeps): curves across seeds, final values with 95% intervals.

Examples:
    python experiments/plot.py logs/ppo --out reports/elbow
    python experiments/plot.py logs/ppo/myoElbowPose1D6MRandom-v0_1 logs/ppo/myoElbowPose1D6MRandom-v0_2 --statistic iqm

Writes into --out: <env>.png per environment (evaluation return, success and energy vs env steps, one line per
algorithm x noise with a 95% bootstrap band across seeds; final values as bars with intervals), final.md (a
markdown table: estimate [95% CI] per metric and the number of seeds, then each noise against --baseline: the
difference in return and success, the relative change in energy, with 95% intervals), final.csv, comparison.csv
and evaluations.csv. Only finished runs are reported; final.md lists the others (stopped by an error, or still
running) with their last evaluation, and --unfinished reports them at it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", type=Path, nargs="+", help="run folders, or folders that contain run folders")
    p.add_argument("--out", type=Path, default=Path("reports"), help="output folder (default reports/)")
    p.add_argument("--statistic", choices=["mean", "iqm"], default="mean", help="across seeds (default mean)")
    p.add_argument("--baseline", default="isotropic", help="noise the others are compared with (default isotropic)")
    p.add_argument("--unfinished", action="store_true", help="also report unfinished runs, at their last evaluation")
    args = p.parse_args(argv)
    from lattice.report import write_report  # after parsing: --help stays fast

    try:
        written = write_report(args.paths, args.out, args.statistic, args.baseline, args.unfinished)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(map(str, written)))
    print((args.out / "final.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
