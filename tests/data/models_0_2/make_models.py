"""Writes the models of this folder: small models saved by sb3-lattice 0.2.0 (commit c23c66d), which the current
version must load and run identically (tests/test_policies.py). Kept to show how they were made; running it with a
later version would write that version's models instead.

Each model is saved with every noise parameter in its ``policy_kwargs`` (at the defaults, except ``std_clip``
where the paper's MyoSuite PPO block set it, for every noise), as 0.2's experiment layer wrote them, and
``expected.json`` holds each model's deterministic actions for fixed observations. Run it with 0.2's code first on
the path: ``git worktree add /tmp/v02 c23c66d && PYTHONPATH=/tmp/v02 python tests/data/models_0_2/make_models.py``.
"""

import json
from pathlib import Path

import numpy as np
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO, SAC

from lattice import LatticeActorCriticPolicy, LatticeRecurrentActorCriticPolicy, LatticeSACPolicy

HERE = Path(__file__).parent
ALL_NOISE_PARAMS = dict(alpha=1.0, std_clip=(0.001, 1.0), std_reg=0.0, noise_exponent=1.0, noise_horizon=None)
MODELS = {
    "ppo_lattice": (PPO, LatticeActorCriticPolicy, "lattice", {"std_clip": (0.001, 10.0)}),
    "ppo_isotropic": (PPO, LatticeActorCriticPolicy, "isotropic", {}),
    # 0.2's MyoSuite PPO block set std_clip for every noise: isotropic runs saved Lattice's std_clip, not at default
    "ppo_isotropic_std_clip": (PPO, LatticeActorCriticPolicy, "isotropic", {"std_clip": (0.001, 10.0)}),
    "sac_gsde": (SAC, LatticeSACPolicy, "gsde", {}),
    "sac_pink": (SAC, LatticeSACPolicy, "pink", {"noise_horizon": 200}),
    "recurrent_ppo_lattice_iid": (RecurrentPPO, LatticeRecurrentActorCriticPolicy, "lattice_iid", {"alpha": 0.5}),
}


def main() -> None:
    observations = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    expected = {"observations": observations.tolist()}
    for name, (algo, policy, noise, params) in MODELS.items():
        policy_kwargs = dict(net_arch=[8], noise=noise, **{**ALL_NOISE_PARAMS, **params})
        extra = dict(n_steps=64, batch_size=32) if algo is not SAC else dict(learning_starts=32, buffer_size=256)
        if algo is RecurrentPPO:
            policy_kwargs["lstm_hidden_size"] = 8
        model = algo(
            policy, "Pendulum-v1", use_sde=noise in ("gsde", "lattice"), policy_kwargs=policy_kwargs, seed=0, **extra
        )
        model.learn(64)
        model.save(HERE / name)
        actions, _ = model.predict(observations, deterministic=True)
        expected[name] = actions.tolist()
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1))


if __name__ == "__main__":
    main()
