"""``lattice-train`` from a source checkout: ``python experiments/run.py --help``.

The code is in lattice/experiments/cli.py; this file only calls it.
"""

import sys

from lattice.experiments.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())
