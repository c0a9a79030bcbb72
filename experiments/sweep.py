"""``lattice-sweep`` from a source checkout: ``python experiments/sweep.py --help``.

The code is in lattice/experiments/cli.py; this file only calls it.
"""

import sys

from lattice.experiments.cli import sweep_main

if __name__ == "__main__":
    sys.exit(sweep_main())
