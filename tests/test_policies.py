"""The policies in SB3's algorithms: registry, validation, save/load in a fresh process, determinism."""

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO, SAC

import lattice
from lattice import (
    NOISES,
    ColoredNoiseDistribution,
    LatticeActorCriticPolicy,
    LatticeIIDNoiseDistribution,
    LatticeNoiseDistribution,
    LatticeRecurrentActorCriticPolicy,
    LatticeSACPolicy,
    SquashedColoredNoiseDistribution,
)

ENV_ID = "Pendulum-v1"  # classic control: these core tests need no MuJoCo (they also run with the core alone)
ALGOS = {"sac": (SAC, LatticeSACPolicy), "ppo": (PPO, LatticeActorCriticPolicy)}
ALGOS["recurrent_ppo"] = (RecurrentPPO, LatticeRecurrentActorCriticPolicy)
# Non-default settings, so that a load that silently fell back to defaults would show.
SETTINGS = dict(noise="lattice", alpha=0.5, std_clip=(1e-3, 10.0), std_reg=0.01, full_std=False)
SMALL = dict(policy_kwargs=dict(net_arch=[32, 32]))


def small_kwargs(algo: str) -> dict:
    if algo == "sac":
        return dict(learning_starts=32, batch_size=32, buffer_size=1000)
    return dict(n_steps=32, batch_size=16, n_epochs=1)


def action_dist(model):
    return model.actor.action_dist if isinstance(model, SAC) else model.policy.action_dist


def test_registry_names() -> None:
    assert set(NOISES) == {"isotropic", "gsde", "lattice", "lattice_iid", "pink"}
    assert [name for name, spec in NOISES.items() if spec.state_dependent] == ["gsde", "lattice"]


@pytest.mark.parametrize("algo", sorted(ALGOS))
@pytest.mark.parametrize(
    "noise,use_sde,expected",
    [
        ("lattice", True, LatticeNoiseDistribution),
        ("lattice_iid", False, LatticeIIDNoiseDistribution),
        ("gsde", True, "StateDependentNoiseDistribution"),
        ("isotropic", False, "DiagGaussianDistribution"),
        ("pink", False, ColoredNoiseDistribution),
    ],
)
def test_noise_selects_distribution(algo: str, noise: str, use_sde: bool, expected) -> None:
    cls, policy = ALGOS[algo]
    model = cls(policy, ENV_ID, use_sde=use_sde, policy_kwargs=dict(noise=noise, net_arch=[16]), **small_kwargs(algo))
    dist = action_dist(model)
    if isinstance(expected, str):  # SB3's own classes, reused (SAC squashes its Gaussian)
        assert type(dist).__module__ == "stable_baselines3.common.distributions"
        assert type(dist).__name__ in {expected, "Squashed" + expected}
    elif algo == "sac" and expected is ColoredNoiseDistribution:
        assert type(dist) is SquashedColoredNoiseDistribution
    else:
        assert type(dist) is expected


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_state_dependent_noise_without_use_sde_names_the_fix(algo: str) -> None:
    cls, policy = ALGOS[algo]
    with pytest.raises(ValueError, match=r"use_sde=True.*lattice_iid"):
        cls(policy, ENV_ID, use_sde=False, **small_kwargs(algo))


def test_fresh_noise_with_use_sde_names_the_fix() -> None:
    with pytest.raises(ValueError, match="use_sde=False"):
        PPO(LatticeActorCriticPolicy, ENV_ID, use_sde=True, policy_kwargs=dict(noise="isotropic"))


def test_unknown_noise_lists_choices() -> None:
    with pytest.raises(ValueError, match="isotropic, gsde, lattice, lattice_iid"):
        SAC(LatticeSACPolicy, ENV_ID, use_sde=True, policy_kwargs=dict(noise="latice"))


def test_discrete_action_space_is_refused_clearly() -> None:
    # (With use_sde=True, SB3 itself refuses discrete actions first, with its own clear message.)
    with pytest.raises(ValueError, match=r"continuous \(Box\) action space.*MlpPolicy"):
        PPO(LatticeActorCriticPolicy, "CartPole-v1", policy_kwargs=dict(noise="lattice_iid"))


def test_dotted_path_resolves_like_rl_zoo(tmp_path: Path) -> None:
    """rl-baselines3-zoo names a custom policy by dotted path and imports it with importlib."""
    yaml = pytest.importorskip("yaml")  # the zoo's hyperparameter files are YAML (not a core dependency)
    config = tmp_path / "sac.yml"
    config.write_text(yaml.safe_dump({ENV_ID: {"policy": "lattice.LatticeSACPolicy", "use_sde": True}}))
    hyperparams = yaml.safe_load(config.read_text())[ENV_ID]
    module_name, class_name = hyperparams.pop("policy").rsplit(".", 1)
    policy = getattr(importlib.import_module(module_name), class_name)
    model = SAC(policy, ENV_ID, **hyperparams, **small_kwargs("sac"))
    assert isinstance(model.actor.action_dist, LatticeNoiseDistribution)
    for name in lattice.__all__:  # everything public resolves by dotted path
        assert getattr(importlib.import_module("lattice"), name) is getattr(lattice, name)


LOAD_SCRIPT = """
import json, sys
import numpy as np
from stable_baselines3 import PPO, SAC
from sb3_contrib import RecurrentPPO
import torch
import lattice  # noqa: F401  (the classes also unpickle without it: pickle imports their module)
torch.set_num_threads(1)  # as in the saving process: same float arithmetic, so bit-identical actions
algo, path, obs_path = sys.argv[1:]
cls = {"sac": SAC, "ppo": PPO, "recurrent_ppo": RecurrentPPO}[algo]
model = cls.load(path, device="cpu")
obs = np.load(obs_path)
if algo == "recurrent_ppo":
    actions, _ = model.predict(obs, state=None, episode_start=np.ones(len(obs), dtype=bool), deterministic=True)
else:
    actions, _ = model.predict(obs, deterministic=True)
dist = model.actor.action_dist if algo == "sac" else model.policy.action_dist
print(json.dumps(dict(actions=actions.tolist(), dist=type(dist).__name__, alpha=dist.alpha,
                      std_clip=list(dist.std_clip), std_reg=dist.std_reg, full_std=dist.full_std,
                      policy=type(model.policy).__name__)))
"""


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_save_load_in_fresh_process(algo: str, tmp_path: Path) -> None:
    cls, policy = ALGOS[algo]
    model = cls(
        policy, ENV_ID, use_sde=True, seed=0, policy_kwargs=dict(SETTINGS, net_arch=[32, 32]), **small_kwargs(algo)
    )
    model.learn(64)
    obs = np.stack([model.observation_space.sample() for _ in range(5)]).astype(np.float32)
    if algo == "recurrent_ppo":
        expected, _ = model.predict(obs, state=None, episode_start=np.ones(5, dtype=bool), deterministic=True)
    else:
        expected, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "model.zip")
    np.save(tmp_path / "obs.npy", obs)
    out = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, algo, str(tmp_path / "model.zip"), str(tmp_path / "obs.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    np.testing.assert_array_equal(np.asarray(loaded["actions"], dtype=expected.dtype), expected)
    assert loaded["dist"] == "LatticeNoiseDistribution"
    assert loaded["policy"] == policy.__name__
    assert loaded["alpha"] == SETTINGS["alpha"]
    assert tuple(loaded["std_clip"]) == SETTINGS["std_clip"]
    assert loaded["std_reg"] == SETTINGS["std_reg"]
    assert loaded["full_std"] is SETTINGS["full_std"]


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_same_seed_same_training_result(algo: str) -> None:
    cls, policy = ALGOS[algo]

    def train() -> dict[str, th.Tensor]:
        model = cls(
            policy, ENV_ID, use_sde=True, sde_sample_freq=4, seed=3, device="cpu", **SMALL, **small_kwargs(algo)
        )
        model.learn(96)
        return {k: v.clone() for k, v in model.policy.state_dict().items()}

    first, second = train(), train()
    assert first.keys() == second.keys()
    for key in first:
        th.testing.assert_close(first[key], second[key], rtol=0, atol=0, msg=key)


def test_predict_resamples_only_on_reset_noise() -> None:
    """gSDE semantics carried over: between reset_noise() calls, the same observation gives the same action."""
    model = SAC(LatticeSACPolicy, ENV_ID, use_sde=True, seed=0, **SMALL, **small_kwargs("sac"))
    obs = model.observation_space.sample()[None]
    first, _ = model.predict(obs)
    again, _ = model.predict(obs)
    np.testing.assert_array_equal(first, again)
    model.policy.reset_noise()
    assert not np.array_equal(first, model.predict(obs)[0])


def test_sac_mean_clip_keeps_the_sample_gaussian() -> None:
    """With clip_mean, noise is added after the clip: a − clip(μ) is exactly the Lattice noise."""
    model = SAC(LatticeSACPolicy, ENV_ID, use_sde=True, seed=0, policy_kwargs=dict(clip_mean=0.01, net_arch=[8]))
    actor = model.actor
    obs = th.as_tensor(np.stack([model.observation_space.sample() for _ in range(4)]))
    mean, log_std, kwargs = actor.get_action_dist_params(obs)
    assert mean.abs().max() <= 0.01
    dist = actor.action_dist
    dist.proba_distribution(mean, log_std, **kwargs)
    dist.sample()
    th.testing.assert_close(dist._gaussian_actions - mean, dist.get_noise(kwargs["latent_sde"]))


def test_sac_policy_defaults_are_the_papers() -> None:
    model = SAC(LatticeSACPolicy, ENV_ID, use_sde=True)
    dist = model.actor.action_dist
    assert isinstance(dist, LatticeNoiseDistribution)
    assert dist.use_expln and dist.std_clip == (1e-3, 1.0) and dist.alpha == 1.0 and dist.std_reg == 0.0
    assert model.actor.clip_mean == 2.0


def test_isotropic_sac_matches_sb3_mlp_policy() -> None:
    """noise='isotropic' is SB3's SAC policy, parameter for parameter and action for action."""
    ours = SAC(
        LatticeSACPolicy, ENV_ID, seed=1, policy_kwargs=dict(noise="isotropic", use_expln=False, log_std_init=-3)
    )
    sb3 = SAC("MlpPolicy", ENV_ID, seed=1)
    assert ours.policy.state_dict().keys() == sb3.policy.state_dict().keys()
    for key, value in sb3.policy.state_dict().items():
        th.testing.assert_close(ours.policy.state_dict()[key], value)
    env = gym.make(ENV_ID)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(ours.predict(obs, deterministic=True)[0], sb3.predict(obs, deterministic=True)[0])


def _policy_load_works_with_this_torch() -> bool:
    """SB3 before 2.5 loads a policy with ``th.load(path)``, which torch >= 2.6 refuses (weights_only=True by default)
    for every SB3 policy, its own included; the algorithm-level save/load tested above is unaffected."""
    from stable_baselines3.common.policies import BasePolicy

    torch_version = tuple(int(part) for part in th.__version__.split("+")[0].split(".")[:2])
    return "weights_only" in inspect.getsource(BasePolicy.load) or torch_version < (2, 6)


@pytest.mark.skipif(
    not _policy_load_works_with_this_torch(),
    reason="this SB3's BasePolicy.load calls th.load without weights_only=False, which torch >= 2.6 refuses",
)
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_policy_level_save_load_keeps_settings(algo: str, tmp_path: Path) -> None:
    """SB3's policy.save / Policy.load rebuild the policy from its constructor parameters alone."""
    cls, policy_cls = ALGOS[algo]
    model = cls(policy_cls, ENV_ID, use_sde=True, policy_kwargs=dict(SETTINGS, net_arch=[16]), **small_kwargs(algo))
    model.policy.save(str(tmp_path / "policy.pth"))
    loaded = policy_cls.load(str(tmp_path / "policy.pth"), device="cpu")
    dist = loaded.actor.action_dist if algo == "sac" else loaded.action_dist
    assert isinstance(dist, LatticeNoiseDistribution)
    assert (dist.alpha, dist.std_clip, dist.std_reg, dist.full_std) == (0.5, (1e-3, 10.0), 0.01, False)
    for key, value in model.policy.state_dict().items():
        th.testing.assert_close(loaded.state_dict()[key], value)
