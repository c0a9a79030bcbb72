"""``lattice-enjoy`` from a source checkout: ``python experiments/enjoy.py --help``.

The code is in lattice/experiments/cli.py; this file only calls it.
"""

import sys

from lattice.experiments.cli import enjoy_main

if __name__ == "__main__":
    sys.exit(enjoy_main())
