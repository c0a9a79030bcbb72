"""``lattice-render`` from a source checkout: ``python experiments/render.py --help``.

The code is in lattice/experiments/cli.py; this file only calls it.
"""

import sys

from lattice.experiments.cli import render_main

if __name__ == "__main__":
    sys.exit(render_main())
