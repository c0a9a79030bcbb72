"""``lattice-tune`` from a source checkout: ``python experiments/tune.py --help``.

The code is in lattice/experiments/cli.py; this file only calls it.
"""

import sys

from lattice.experiments.cli import tune_main

if __name__ == "__main__":
    sys.exit(tune_main())
