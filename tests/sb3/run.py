"""Run Stable-Baselines3's own tests (of the installed SB3 version) with this package's classes, once per noise.

Fetches SB3's test files (``tests/sb3/fetch.py``), then runs pytest with the adapter (``tests/sb3/sb3_adapter.py``)
once per noise: the state-dependent noises (``gsde``, ``lattice``) on ``test_sde.py``, ``test_save_load.py`` and the
gSDE tests of ``test_distributions.py``; the others (``isotropic``, ``lattice_iid``, ``pink``) on ``test_sde.py`` and
``test_save_load.py``, where each runs the tests whose models fit it. Prints a table of the outcomes per file and
noise, and exits non-zero if any run failed. ``make test-sb3`` runs it. Usage::

    python tests/sb3/run.py                       # every noise
    python tests/sb3/run.py --noise lattice -- -x -k save_load_policy   # after --: pytest's own options
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fetch
from sb3_adapter import OUTCOMES, PLAIN_FILES, STATE_DEPENDENT_FILES

from lattice.noise import NOISES

HERE = Path(__file__).resolve().parent


def run_noise(noise: str, sb3_dir: Path, pytest_args: list[str], report: Path) -> int:
    """One pytest run of SB3's files for ``noise``; its exit code."""
    files = STATE_DEPENDENT_FILES if NOISES[noise].state_dependent else PLAIN_FILES
    command = [sys.executable, "-m", "pytest", "-p", "sb3_adapter", "--sb3-noise", noise, "--sb3-dir", str(sb3_dir)]
    # SB3's own pytest settings (its warning filters, which its tests assume, and markers), from its folder.
    command += ["-c", str(sb3_dir / "pyproject.toml"), "--rootdir", str(sb3_dir), "-p", "no:cacheprovider"]
    command += ["--sb3-report", str(report), "-m", "not expensive", "-ra", *pytest_args]
    command += [str(sb3_dir / "tests" / name) for name in files]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    print(f"\n=== noise={noise}: {' '.join(command[1:])}", flush=True)
    return subprocess.run(command, cwd=fetch.ROOT, env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--noise", nargs="+", choices=list(NOISES), default=list(NOISES), help="the noises to run")
    parser.add_argument("--version", help="the SB3 release whose tests to run (default: the installed version)")
    parser.add_argument("pytest_args", nargs="*", help="after --: options passed on to pytest")
    args = parser.parse_args(argv)
    sb3_dir = fetch.fetch(args.version)
    start = time.monotonic()
    codes: dict[str, int] = {}
    counts: dict[str, dict[str, dict[str, int]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for noise in args.noise:
            report = Path(tmp) / f"{noise}.json"
            codes[noise] = run_noise(noise, sb3_dir, args.pytest_args, report)
            counts[noise] = json.loads(report.read_text()) if report.exists() else {}
    print(f"\n=== SB3 {sb3_dir.name}'s tests with this package's classes ({time.monotonic() - start:.0f} s)")
    for noise in args.noise:
        for name, tally in sorted(counts[noise].items()):
            print(f"{noise:12} {name:24} " + ", ".join(f"{tally[k]} {k}" for k in OUTCOMES if tally.get(k)))
        if codes[noise] != 0:
            print(f"{noise:12} pytest exited {codes[noise]}")
    return 0 if all(code == 0 for code in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
