"""Run by tests/test_packaging.py inside a fresh virtual environment holding the installed package (core only):
importing the core adds nothing of the experiment layer to what SB3 itself imports (SB3 < 2.3 imports pandas and
matplotlib), a 200-step Lattice-SAC and Lattice-PPO train on Pendulum-v1, and a fresh process loads them with
identical predictions. Prints one JSON line."""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import sb3_contrib  # noqa: F401
import stable_baselines3  # noqa: F401

EXPERIMENT_LAYER = {"myosuite", "matplotlib", "dask", "distributed", "wandb", "pandas", "yaml", "numba"}
before = {name.split(".")[0] for name in sys.modules}
import lattice  # noqa: E402

added = sorted(EXPERIMENT_LAYER & ({name.split(".")[0] for name in sys.modules} - before))
assert not added, f"import lattice imported {added}"

import numpy as np  # noqa: E402
from stable_baselines3 import PPO, SAC  # noqa: E402

LOAD = """
import json, sys
import numpy as np
from stable_baselines3 import PPO, SAC
algo = {"sac": SAC, "ppo": PPO}[sys.argv[1]]  # the policy class unpickles by its module path
model = algo.load(sys.argv[2], device="cpu")
obs = np.array(json.loads(sys.argv[3]), dtype=np.float32)
print(json.dumps(model.predict(obs, deterministic=True)[0].tolist()))
"""

observations = np.random.default_rng(0).uniform(-1, 1, size=(5, 3)).astype(np.float32)
observations[:, :2] /= np.linalg.norm(observations[:, :2], axis=1, keepdims=True)  # (cos θ, sin θ, θ')
result = {"version": lattice.__version__, "file": lattice.__file__}
common = dict(use_sde=True, seed=0, device="cpu")
with tempfile.TemporaryDirectory() as folder:
    models = {
        "sac": SAC(lattice.LatticeSACPolicy, "Pendulum-v1", learning_starts=100, batch_size=32, **common),
        "ppo": PPO(lattice.LatticeActorCriticPolicy, "Pendulum-v1", n_steps=100, batch_size=50, **common),
    }
    for name, model in models.items():
        model.learn(200)
        path = Path(folder) / f"{name}.zip"
        model.save(path)
        here = model.predict(observations, deterministic=True)[0].tolist()
        there = subprocess.run(
            [sys.executable, "-c", LOAD, name, str(path), json.dumps(observations.tolist())],
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(there.stdout) == here, f"{name}: the loaded model predicts differently"
        result[name] = here
print(json.dumps(result))
