"""The policies in SB3's algorithms (SAC, TQC, PPO, A2C, RecurrentPPO): registry, each noise's parameters,
validation, save/load in a fresh process, models saved by version 0.2, determinism."""

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
from sb3_contrib import TQC, RecurrentPPO
from stable_baselines3 import A2C, PPO, SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

import lattice
from lattice import (
    NOISE_PARAMETERS,
    NOISES,
    ColoredNoiseDistribution,
    LatticeActorCriticPolicy,
    LatticeIIDNoiseDistribution,
    LatticeNoiseDistribution,
    LatticeRecurrentActorCriticPolicy,
    LatticeSACPolicy,
    LatticeTQCPolicy,
    SquashedColoredNoiseDistribution,
    load_model,
    make_noise_distribution,
    resolve_noise_params,
)

ENV_ID = "Pendulum-v1"  # classic control: these core tests need no MuJoCo (they also run with the core alone)
# Every SB3 / sb3-contrib algorithm that supports gSDE.
ALGOS = {"sac": (SAC, LatticeSACPolicy), "tqc": (TQC, LatticeTQCPolicy), "ppo": (PPO, LatticeActorCriticPolicy)}
ALGOS |= {"a2c": (A2C, LatticeActorCriticPolicy), "recurrent_ppo": (RecurrentPPO, LatticeRecurrentActorCriticPolicy)}
OFF_POLICY = ("sac", "tqc")
# Non-default settings, so that a load that silently fell back to defaults would show.
SETTINGS = dict(noise="lattice", alpha=0.5, std_clip=(1e-3, 10.0), std_reg=0.01, full_std=False)
# Each noise with non-default values of its own parameters (and of SB3's full_std where it applies).
NOISE_SETTINGS = {
    "isotropic": dict(noise="isotropic"),
    "gsde": dict(noise="gsde", full_std=False),
    "lattice": SETTINGS,
    "lattice_iid": dict(noise="lattice_iid", alpha=0.5),
    "pink": dict(noise="pink", noise_exponent=2.0, noise_horizon=50),
}
SMALL = dict(policy_kwargs=dict(net_arch=[32, 32]))


def small_kwargs(algo: str) -> dict:
    if algo in OFF_POLICY:
        return dict(learning_starts=32, batch_size=32, buffer_size=1000)
    if algo == "a2c":
        return dict(n_steps=8)
    return dict(n_steps=32, batch_size=16, n_epochs=1)


def action_dist(model):
    return model.actor.action_dist if isinstance(model, (SAC, TQC)) else model.policy.action_dist


@pytest.mark.fast
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
@pytest.mark.fast
def test_noise_selects_distribution(algo: str, noise: str, use_sde: bool, expected) -> None:
    cls, policy = ALGOS[algo]
    model = cls(policy, ENV_ID, use_sde=use_sde, policy_kwargs=dict(noise=noise, net_arch=[16]), **small_kwargs(algo))
    dist = action_dist(model)
    if isinstance(expected, str):  # SB3's own classes, reused (SAC squashes its Gaussian)
        assert type(dist).__module__ == "stable_baselines3.common.distributions"
        assert type(dist).__name__ in {expected, "Squashed" + expected}
    elif algo in OFF_POLICY and expected is ColoredNoiseDistribution:
        assert type(dist) is SquashedColoredNoiseDistribution
    else:
        assert type(dist) is expected


@pytest.mark.parametrize("algo", sorted(ALGOS))
@pytest.mark.fast
def test_state_dependent_noise_without_use_sde_names_the_fix(algo: str) -> None:
    cls, policy = ALGOS[algo]
    with pytest.raises(ValueError, match=r"use_sde=True.*lattice_iid"):
        cls(policy, ENV_ID, use_sde=False, **small_kwargs(algo))


@pytest.mark.fast
def test_fresh_noise_with_use_sde_names_the_fix() -> None:
    with pytest.raises(ValueError, match="use_sde=False"):
        PPO(LatticeActorCriticPolicy, ENV_ID, use_sde=True, policy_kwargs=dict(noise="isotropic"))


@pytest.mark.fast
def test_unknown_noise_lists_choices() -> None:
    with pytest.raises(ValueError, match="isotropic, gsde, lattice, lattice_iid"):
        SAC(LatticeSACPolicy, ENV_ID, use_sde=True, policy_kwargs=dict(noise="latice"))


@pytest.mark.fast
def test_discrete_action_space_is_refused_clearly() -> None:
    # (With use_sde=True, SB3 itself refuses discrete actions first, with its own clear message.)
    with pytest.raises(ValueError, match=r"continuous \(Box\) action space.*MlpPolicy"):
        PPO(LatticeActorCriticPolicy, "CartPole-v1", policy_kwargs=dict(noise="lattice_iid"))


@pytest.mark.fast
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
    for name in lattice.__all__:  # everything public resolves by the dotted path of the module that defines it
        obj = getattr(lattice, name)
        if isinstance(obj, type) or inspect.isfunction(obj):
            assert getattr(importlib.import_module(obj.__module__), obj.__qualname__) is obj, name
    public = {name for name, obj in vars(lattice).items() if not name.startswith("_") and inspect.isclass(obj)}
    assert public <= set(lattice.__all__), public - set(lattice.__all__)


LOAD_SCRIPT = """
import json, sys
import numpy as np
from stable_baselines3 import A2C, PPO, SAC
from sb3_contrib import TQC, RecurrentPPO
import torch
import lattice  # noqa: F401  (the classes also unpickle without it: pickle imports their module)
torch.set_num_threads(1)  # as in the saving process: same float arithmetic, so bit-identical actions
algo, folder, obs_path = sys.argv[1:]
cls = {"sac": SAC, "tqc": TQC, "ppo": PPO, "a2c": A2C, "recurrent_ppo": RecurrentPPO}[algo]
obs = np.load(obs_path)
loaded = {}
for path in sorted(__import__("pathlib").Path(folder).glob("*.zip")):
    model = cls.load(path, device="cpu")
    if algo == "recurrent_ppo":
        actions, _ = model.predict(obs, state=None, episode_start=np.ones(len(obs), dtype=bool), deterministic=True)
    else:
        actions, _ = model.predict(obs, deterministic=True)
    actor = model.actor if algo in ("sac", "tqc") else model.policy
    loaded[path.stem] = dict(actions=actions.tolist(), dist=type(actor.action_dist).__name__,
                             noise=actor.noise_kwargs, full_std=getattr(actor.action_dist, "full_std", None),
                             policy=type(model.policy).__name__)
print(json.dumps(loaded))
"""


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_save_load_in_fresh_process(algo: str, tmp_path: Path) -> None:
    """Each noise, trained a little (past the first gradient steps), saved, and loaded in a fresh process: the same
    policy class, distribution, noise parameters and deterministic actions."""
    assert set(NOISE_SETTINGS) == set(NOISES), "every registered noise is saved and loaded here"
    cls, policy = ALGOS[algo]
    obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.save(tmp_path / "obs.npy", obs)
    (tmp_path / "models").mkdir()
    expected = {}
    for noise, settings in NOISE_SETTINGS.items():
        use_sde = NOISES[noise].state_dependent
        model = cls(
            policy, ENV_ID, use_sde=use_sde, seed=0, policy_kwargs=dict(settings, net_arch=[16]), **small_kwargs(algo)
        )
        model.learn(64)
        if algo == "recurrent_ppo":
            actions, _ = model.predict(obs, state=None, episode_start=np.ones(5, dtype=bool), deterministic=True)
        else:
            actions, _ = model.predict(obs, deterministic=True)
        dist = action_dist(model)
        expected[noise] = (actions, type(dist).__name__, getattr(dist, "full_std", None))
        model.save(tmp_path / "models" / f"{noise}.zip")
    out = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, algo, str(tmp_path / "models"), str(tmp_path / "obs.npy")],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert sorted(loaded) == sorted(NOISE_SETTINGS)
    for noise, (actions, dist_name, full_std) in expected.items():
        got = loaded[noise]
        np.testing.assert_array_equal(np.asarray(got["actions"], dtype=actions.dtype), actions, err_msg=noise)
        assert (got["dist"], got["policy"], got["full_std"]) == (dist_name, policy.__name__, full_std), noise
        # exactly the noise's own parameters, at the values given (JSON turns tuples into lists)
        want = {k: v for k, v in NOISE_SETTINGS[noise].items() if k != "full_std"}
        want = {**resolve_noise_params(noise, {}), **want}
        assert got["noise"] == json.loads(json.dumps(want)), noise
    assert expected["lattice"][1] == "LatticeNoiseDistribution"


MODELS_0_2_DIR = Path(__file__).parent / "data" / "models_0_2"


# name → (algorithm, noise); ppo_isotropic_std_clip holds Lattice's std_clip at a value other than its default, as
# 0.2's MyoSuite PPO settings gave every noise
MODELS_0_2 = {
    "ppo_lattice": (PPO, "lattice"),
    "ppo_isotropic": (PPO, "isotropic"),
    "ppo_isotropic_std_clip": (PPO, "isotropic"),
    "sac_gsde": (SAC, "gsde"),
    "sac_pink": (SAC, "pink"),
    "recurrent_ppo_lattice_iid": (RecurrentPPO, "lattice_iid"),
}
NUMPY_2 = pytest.mark.skipif(
    int(np.__version__.split(".")[0]) < 2,
    reason="the models were saved with numpy 2, whose pickles numpy 1 cannot read (no numpy._core)",
)


@NUMPY_2
@pytest.mark.parametrize("name", MODELS_0_2)
@pytest.mark.fast
def test_models_saved_by_version_0_2_load_and_act_the_same(name: str) -> None:
    """Models saved by 0.2.0 (every noise's parameters in their policy_kwargs, at the defaults where the noise does
    not use them, or not) load through load_model, keep their own noise parameters, and give the actions they gave
    when saved."""
    algo, noise = MODELS_0_2[name]
    expected = json.loads((MODELS_0_2_DIR / "expected.json").read_text())
    model = load_model(algo, MODELS_0_2_DIR / f"{name}.zip", device="cpu")
    obs = np.asarray(expected["observations"], dtype=np.float32)
    kwargs = dict(state=None, episode_start=np.ones(len(obs), dtype=bool)) if algo is RecurrentPPO else {}
    actions, _ = model.predict(obs, deterministic=True, **kwargs)
    np.testing.assert_allclose(actions, np.asarray(expected[name]), rtol=0, atol=1e-6)
    actor = model.actor if algo is SAC else model.policy
    assert actor.noise_kwargs["noise"] == noise
    assert set(actor.noise_kwargs) == {"noise", *NOISES[noise].param_names}  # the others were dropped


@NUMPY_2
@pytest.mark.fast
def test_load_model_is_the_algorithms_load_where_the_model_fits_this_version() -> None:
    """The models whose other noises' parameters are at their defaults load with SB3's own load too; the one with
    Lattice's std_clip on isotropic noise is refused by it, naming the parameter, and loads with load_model."""
    for name, (algo, noise) in MODELS_0_2.items():
        if name != "ppo_isotropic_std_clip":
            assert algo.load(MODELS_0_2_DIR / f"{name}.zip", device="cpu").policy_kwargs["noise"] == noise
    with pytest.raises(ValueError, match=r"noise 'isotropic' has no parameter 'std_clip'"):
        PPO.load(MODELS_0_2_DIR / "ppo_isotropic_std_clip.zip", device="cpu")


@pytest.mark.fast
def test_each_noise_declares_its_parameters() -> None:
    """The registry is the one declaration: each noise's parameters, and every one of them a keyword the noise uses."""
    declared = {name: spec.param_names for name, spec in NOISES.items()}
    assert declared == {
        "isotropic": (),
        "gsde": (),
        "lattice": ("alpha", "std_clip", "std_reg"),
        "lattice_iid": ("alpha",),
        "pink": ("noise_exponent", "noise_horizon"),
    }
    assert set(NOISE_PARAMETERS) == {p for names in declared.values() for p in names}
    for name, spec in NOISES.items():
        assert resolve_noise_params(name, {}) == spec.defaults()


FOREIGN = [
    (noise, param, value)
    for noise in NOISES
    for param, value in dict(alpha=0.5, std_clip=(0.01, 1.0), std_reg=0.1, noise_exponent=2.0, noise_horizon=50).items()
    if param not in NOISES[noise].param_names
]


@pytest.mark.parametrize("noise,param,value", FOREIGN)
@pytest.mark.fast
def test_a_parameter_of_another_noise_is_refused(noise: str, param: str, value) -> None:
    """A parameter the chosen noise does not use is refused (it would be saved as if used), naming its parameters."""
    own = ", ".join(NOISES[noise].param_names) or "none"
    message = rf"noise '{noise}' has no parameter '{param}' .*; {noise}'s parameters: {own}$"
    use_sde = NOISES[noise].state_dependent
    for algo in ("sac", "ppo"):
        cls, policy = ALGOS[algo]
        with pytest.raises(ValueError, match=message):
            cls(policy, ENV_ID, use_sde=use_sde, policy_kwargs={"noise": noise, param: value, "net_arch": [8]})
    with pytest.raises(ValueError, match=message):
        make_noise_distribution(noise, gym.spaces.Box(-1, 1, (2,)), use_sde=use_sde, **{param: value})


@pytest.mark.parametrize("noise", sorted(NOISES))
@pytest.mark.fast
def test_another_noise_parameter_at_its_default_is_dropped(noise: str) -> None:
    """Files written by 0.2 carry every noise's parameters at their defaults: accepted, and not kept."""
    every = {name: param.default for name, param in NOISE_PARAMETERS.items()}
    model = PPO(
        LatticeActorCriticPolicy,
        ENV_ID,
        use_sde=NOISES[noise].state_dependent,
        policy_kwargs={"noise": noise, "net_arch": [8], **every},
    )
    saved = model.policy._get_constructor_parameters()
    assert {k for k in saved if k in NOISE_PARAMETERS} == set(NOISES[noise].param_names)


@pytest.mark.parametrize(
    "noise,params,match",
    [
        ("lattice", dict(alpha=-1.0), r"alpha must be a finite number >= 0"),
        ("lattice_iid", dict(alpha=float("inf")), r"alpha must be a finite number >= 0"),
        ("lattice", dict(std_clip=(1.0, 0.1)), r"std_clip must be \(min, max\) with 0 < min < max"),
        ("lattice", dict(std_clip=(0.1,)), r"std_clip must be \(min, max\)"),
        ("lattice", dict(std_reg=-0.1), r"std_reg must be a finite number >= 0"),
        ("pink", dict(noise_exponent=float("nan")), r"noise_exponent must be a finite number"),
        ("pink", dict(noise_horizon=1), r"noise_horizon must be an integer >= 2"),
        ("pink", dict(noise_horizon=10.5), r"noise_horizon must be an integer >= 2"),
        ("lattice", dict(alpha=True), r"alpha must be a finite number >= 0"),
    ],
)
@pytest.mark.fast
def test_a_noise_parameter_out_of_range_is_refused(noise: str, params: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        resolve_noise_params(noise, params)


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


@pytest.mark.parametrize("algo", ["ppo", "recurrent_ppo", "a2c"])
def test_lattice_trains_as_the_plain_matrix_path_where_each_draw_serves_several_steps(algo: str) -> None:
    """Redrawn every 4 steps, each draw is matrices, drawn as the plain path (``fresh_draws = False``) draws them:
    the same seed gives the same parameters. Redrawn every step, the draws come from their marginal: at the end of
    each rollout but the first, the last step's draw has no matrices."""
    cls, policy = ALGOS[algo]

    class LastDraws(BaseCallback):
        """Whether the last draw of each rollout was a marginal one (before ``train``, which may redraw)."""

        def __init__(self) -> None:
            super().__init__()
            self.marginal: list[bool] = []

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            dist = action_dist(self.model)
            self.marginal.append(dist._env_mats is None and dist._fresh is not None)

    def train(period: int, fresh: bool) -> tuple[dict[str, th.Tensor], list[bool]]:
        env = make_vec_env(ENV_ID, n_envs=2, seed=3)
        kwargs = dict(sde_sample_freq=period, seed=3, device="cpu", policy_kwargs=dict(net_arch=[32, 32]))
        model = cls(policy, env, use_sde=True, **kwargs, **small_kwargs(algo))
        action_dist(model).fresh_draws = fresh
        last_draws = LastDraws()
        model.learn(96, callback=last_draws)
        return {k: v.clone() for k, v in model.policy.state_dict().items()}, last_draws.marginal

    (fresh, marginal), (plain, _) = train(4, True), train(4, False)
    for key in plain:
        th.testing.assert_close(fresh[key], plain[key], rtol=0, atol=0, msg=key)
    assert not any(marginal)
    _, marginal = train(1, True)
    assert len(marginal) >= 2 and all(marginal)  # each rollout's last step: d + n normals per env


@pytest.mark.fast
def test_predict_resamples_only_on_reset_noise() -> None:
    """gSDE semantics carried over: between reset_noise() calls, the same observation gives the same action."""
    model = SAC(LatticeSACPolicy, ENV_ID, use_sde=True, seed=0, **SMALL, **small_kwargs("sac"))
    obs = model.observation_space.sample()[None]
    first, _ = model.predict(obs)
    again, _ = model.predict(obs)
    np.testing.assert_array_equal(first, again)
    model.policy.reset_noise()
    assert not np.array_equal(first, model.predict(obs)[0])


@pytest.mark.fast
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


@pytest.mark.fast
def test_sac_policy_defaults_are_the_papers() -> None:
    model = SAC(LatticeSACPolicy, ENV_ID, use_sde=True)
    dist = model.actor.action_dist
    assert isinstance(dist, LatticeNoiseDistribution)
    assert dist.use_expln and dist.std_clip == (1e-3, 1.0) and dist.alpha == 1.0 and dist.std_reg == 0.0
    assert model.actor.clip_mean == 2.0


@pytest.mark.fast
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
@pytest.mark.fast
def test_policy_level_save_load_keeps_settings(algo: str, tmp_path: Path) -> None:
    """SB3's policy.save / Policy.load rebuild the policy from its constructor parameters alone."""
    cls, policy_cls = ALGOS[algo]
    model = cls(policy_cls, ENV_ID, use_sde=True, policy_kwargs=dict(SETTINGS, net_arch=[16]), **small_kwargs(algo))
    model.policy.save(str(tmp_path / "policy.pth"))
    loaded = policy_cls.load(str(tmp_path / "policy.pth"), device="cpu")
    dist = loaded.actor.action_dist if algo in OFF_POLICY else loaded.action_dist
    assert isinstance(dist, LatticeNoiseDistribution)
    assert (dist.alpha, dist.std_clip, dist.std_reg, dist.full_std) == (0.5, (1e-3, 10.0), 0.01, False)
    for key, value in model.policy.state_dict().items():
        th.testing.assert_close(loaded.state_dict()[key], value)


@pytest.mark.parametrize("full_std", [False, True])
def test_lattice_evaluate_actions_compiles_into_one_graph_with_the_eager_values(full_std: bool) -> None:
    """With full_std=False (the paper's PPO setting) torch.compile traces PPO's evaluation path whole (no graph break:
    the eigendecomposition cache and the finite check step aside while compiling); with full_std=True it breaks at
    the factorisation's checks. Either way the compiled log-probabilities, entropy and values are the eager ones."""
    th.manual_seed(0)
    model = PPO(
        LatticeActorCriticPolicy, ENV_ID, use_sde=True, policy_kwargs=dict(net_arch=[32, 32], full_std=full_std)
    )
    policy = model.policy
    obs = th.randn(8, *model.observation_space.shape)
    actions = th.randn(8, *model.action_space.shape)
    th._dynamo.reset()
    explained = th._dynamo.explain(policy.evaluate_actions)(obs, actions)
    if not full_std:
        assert explained.graph_break_count == 0 and explained.graph_count == 1, explained.break_reasons
    compiled = th.compile(policy.evaluate_actions, backend="aot_eager", fullgraph=not full_std)
    for got, expected in zip(compiled(obs, actions), policy.evaluate_actions(obs, actions), strict=True):
        th.testing.assert_close(got, expected)
