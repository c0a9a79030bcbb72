"""Sphinx configuration of the sb3-lattice documentation (``make docs``; CI builds it with warnings as errors)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))  # the local extension that renders the CLI reference from the parsers
sys.path.insert(0, str(DOCS.parent))  # the checkout's package, also when it is not installed

import lattice  # noqa: E402

project = "sb3-lattice"
author = "lattice developers"
copyright = "lattice developers"
release = lattice.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "cli_reference",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated", "Thumbs.db", ".DS_Store"]

# Tables generated from the code's declarations, written before the pages are read (docs/_generated is not
# committed): the run settings of the CLI page.
GENERATED = DOCS / "_generated"
GENERATED.mkdir(exist_ok=True)
from lattice.experiments.settings import settings_table  # noqa: E402

(GENERATED / "settings.md").write_text(settings_table())
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3  # links to a section of a page: [text](run_folder.md#the-run-folder)
suppress_warnings = ["myst.header"]  # pages moved from the README start their sections at ## below one # title

# The API reference: autodoc reads the docstrings (reST ``:param:`` fields, as SB3's). No intersphinx: the build
# runs offline, so references to other packages' classes in type hints are left unlinked rather than reported.
# ignore-module-all: a module documents what it defines; a facade (config.py) re-exports names documented at home
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
    "ignore-module-all": True,
}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_preserve_defaults = True
autodoc_inherit_docstrings = False  # inherited gymnasium and SB3 docstrings are their projects' to format
autosummary_generate = False
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(th|torch|np|numpy|nn|gym|gymnasium|spaces|stable_baselines3|sb3_contrib|optuna|distributed|dask"
        r"|dask_jobqueue|pd|pandas|matplotlib|yaml|numba|argparse|pathlib|collections|typing|types|logging"
        r"|multiprocessing|subprocess|threading|signal|datetime|os|io|contextlib|enum|dataclasses)\..*",
    ),
    # names of other packages and builtins as they appear in signatures and :type: fields
    (
        r"py:.*",
        r"(Tensor|Path|Any|Callable|Iterator|Iterable|Sequence|Mapping|Self|TypeVar|Schedule|GymEnv"
        r"|VecEnv|VecNormalize|BaseCallback|BaseAlgorithm|BasePolicy|PolicyPredictor|Distribution|Figure|Axes"
        r"|DataFrame"
        r"|ndarray|NDArray|optional|callable|array-like|file-like|iterable)",
    ),
    (r"py:.*", r"lattice\..*\._.*"),  # private names that a public signature mentions
]

html_theme = "furo"
html_title = f"sb3-lattice {release}"
