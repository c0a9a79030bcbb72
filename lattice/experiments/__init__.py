"""The experiment layer: configs, training runs and their folders, reports, videos, sweeps (``pip install
'sb3-lattice[experiments]'``; sweeps also need ``[sweeps]``).

It builds on the core (``lattice``: distributions, policies, the noise registry, envs); the core never imports it.
Its modules, each imported on its own (importing this package imports none of them):

- ``config``: YAML task files (``configs/``, shipped in the package) → one resolved, validated config;
- ``rundir``: the run folder's layout, atomic writes, what a run says about itself;
- ``training``: a config → envs, model, callbacks → a run folder; resume;
- ``callbacks``: evaluation with energy, checkpoints;
- ``playback``: a saved policy on its env with its own statistics (``lattice-enjoy``);
- ``report``: a run's figures, reports over seeds;
- ``video``: headless rollout videos;
- ``sweep``: grids on Dask;
- ``cli``: the commands (``lattice-train``, ``lattice-sweep``, ``lattice-plot``, ``lattice-render``,
  ``lattice-enjoy``; ``experiments/*.py`` in the repository call the same functions);
- ``process``: the process-wide settings the commands apply (rendering backend, torch threads).
"""
