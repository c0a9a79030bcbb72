"""``lattice-plot`` from a source checkout: ``python experiments/plot.py --help``.

The code is in lattice/experiments/cli.py; this file only calls it.
"""

import sys

from lattice.experiments.cli import plot_main

if __name__ == "__main__":
    sys.exit(plot_main())
