"""Config resolution: task files, layering, variants, overrides, validation errors, the resolved round trip."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch as th
import yaml

from lattice.experiments.config import (
    CONFIG_DIR,
    ConfigError,
    algo_kwargs,
    dump_config,
    load_yaml,
    parse_hyperparams,
    resolve_config,
    task_names,
)
from lattice.experiments.training import build_model

pytestmark = pytest.mark.fast


def test_task_names_are_the_task_files():
    assert {"ant", "reorient", "pen", "elbow"} <= set(task_names())
    assert "defaults" not in task_names()  # a shared layer, not a task


def test_ant_sac_has_the_papers_settings():
    c = resolve_config("sac", "lattice", "ant")
    assert c["env"] == "Ant-v5" and c["n_envs"] == 16 and c["normalize"] == {"norm_obs": True, "norm_reward": True}
    hp = c["hyperparams"]
    assert (hp["learning_rate"], hp["buffer_size"], hp["learning_starts"], hp["batch_size"]) == (
        3e-4,
        300_000,
        10_000,
        256,
    )
    assert (hp["tau"], hp["gamma"], hp["train_freq"], hp["gradient_steps"], hp["ent_coef"]) == (
        0.02,
        0.98,
        8,
        8,
        "auto",
    )
    pk = hp["policy_kwargs"]
    assert pk["net_arch"] == [400, 300] and pk["activation_fn"] == "GELU"
    assert pk["use_expln"] is True and pk["clip_mean"] == 2.0 and pk["std_clip"] == [0.001, 1.0]
    assert pk["alpha"] == 1.0  # a constructor default, filled in


@pytest.mark.parametrize("algo", ["ppo", "recurrent_ppo"])
def test_reorient_ppo_has_the_papers_settings(algo):
    c = resolve_config(algo, "lattice", "reorient")
    assert c["env"] == "myoChallengeDieReorientP2-v0" and c["max_episode_steps"] == 150
    assert c["env_kwargs"] == {"goal_pos": [0.0, 0.0], "goal_rot": [-0.785, 0.785]}
    assert c["reward_weights"] == dict(
        pos_dist=2.0, rot_dist=0.2, pos_dist_diff=100.0, rot_dist_diff=10.0, alive=1.0, act_reg=0.0, solved=2.0
    )
    hp = c["hyperparams"]
    assert (hp["n_steps"], hp["batch_size"], hp["n_epochs"], hp["learning_rate"]) == (128, 32, 10, 2.55673e-5)
    assert (hp["ent_coef"], hp["clip_range"], hp["gae_lambda"], hp["max_grad_norm"]) == (3.62109e-6, 0.3, 0.9, 0.7)
    assert hp["vf_coef"] == 0.835671 and c["n_envs"] == 16 and c["timesteps"] == 1_000_000  # -n for the paper's 20M
    pk = hp["policy_kwargs"]
    assert pk["full_std"] is False and pk["use_expln"] is True and pk["std_clip"] == [0.001, 10.0]
    assert pk["ortho_init"] is False and pk["net_arch"] == {"pi": [256, 256], "vf": [256, 256]}


def test_pen_has_the_papers_reward():
    c = resolve_config("ppo", "gsde", "pen")
    assert c["env"] == "myoHandPenTwirlRandom-v0" and c["max_episode_steps"] == 100
    weights = {k: v for k, v in c["reward_weights"].items() if v}
    assert weights == {"pos_align_diff": 100.0, "rot_align_diff": 100.0, "solved": 1.0}


def test_gym_id_of_a_variant_uses_the_task_settings_with_its_own_env():
    c = resolve_config("ppo", "lattice", "myoHandReorient8-v0")
    assert c["env"] == "myoHandReorient8-v0"
    assert c["env_kwargs"] == {} and c["reward_weights"] is None and c["max_episode_steps"] is None
    assert c["hyperparams"]["n_steps"] == 128  # reorient's algorithm settings


def test_gym_id_of_a_task_and_an_unknown_gym_id():
    assert resolve_config("sac", "gsde", "Ant-v5")["n_envs"] == 16  # ant.yaml
    c = resolve_config("ppo", "isotropic", "InvertedPendulum-v5")  # no task file: defaults.yaml and SB3's defaults
    assert c["env"] == "InvertedPendulum-v5" and c["n_envs"] == 1 and c["hyperparams"]["n_steps"] == 2048


def test_precedence_file_then_flags_then_hyperparams():
    c = resolve_config(
        "sac",
        "lattice",
        "ant",
        overrides={"seed": 7, "n_envs": 2},
        hyperparams=["n_envs=3", "learning_rate=1e-3", "policy_kwargs.alpha=0.5", "normalize.norm_reward=false"],
    )
    assert c["seed"] == 7 and c["n_envs"] == 3 and c["timesteps"] == 1_000_000
    assert c["hyperparams"]["learning_rate"] == 1e-3 and c["hyperparams"]["policy_kwargs"]["alpha"] == 0.5
    assert c["normalize"] == {"norm_obs": True, "norm_reward": False}
    assert c["hyperparams"]["policy_kwargs"]["net_arch"] == [400, 300]  # untouched keys stay


def test_included_files_rank_below_the_task_file():
    c = resolve_config("ppo", "lattice", "elbow")  # shared/paper_ppo_myosuite.yaml says 16 envs, elbow.yaml 4
    assert c["n_envs"] == 4 and c["timesteps"] == 200_000 and c["hyperparams"]["n_steps"] == 128


def test_env_flag_replaces_the_env_of_a_config_file(tmp_path: Path):
    c = resolve_config("sac", "lattice", "ant")
    dump_config(c, tmp_path / "config.yml")
    other = resolve_config(env="HalfCheetah-v5", config=tmp_path / "config.yml")
    assert other["env"] == "HalfCheetah-v5" and other["hyperparams"] == c["hyperparams"]


def test_hyperparam_values_are_yaml_with_exponent_floats():
    assert parse_hyperparams(["a=3e-4", "b=[1, 2]", "c=null", "d.e=1e6", "f=text"]) == {
        "hyperparams": {"a": 3e-4, "b": [1, 2], "c": None, "d": {"e": 1e6}, "f": "text"}
    }
    assert (
        resolve_config("sac", "lattice", "ant", hyperparams=["buffer_size=1e5"])["hyperparams"]["buffer_size"] == 100000
    )


def test_resolved_config_round_trip(tmp_path: Path):
    c = resolve_config(
        "recurrent_ppo", "lattice", "pen", overrides={"seed": 3}, hyperparams=["policy_kwargs.alpha=0.3"]
    )
    dump_config(c, tmp_path / "config.yml")
    assert resolve_config(config=tmp_path / "config.yml") == c
    assert yaml.safe_load((tmp_path / "config.yml").read_text()) == c  # plain YAML, no Python tags


def test_algo_kwargs_wire_the_noise_and_import_classes():
    c = resolve_config("sac", "lattice", "ant", overrides={"noise_period": 8})
    kw = algo_kwargs(c)
    assert kw["use_sde"] is True and kw["sde_sample_freq"] == 8
    assert kw["policy_kwargs"]["noise"] == "lattice" and kw["policy_kwargs"]["activation_fn"] is th.nn.GELU
    assert kw["policy_kwargs"]["optimizer_class"] is th.optim.Adam and kw["policy_kwargs"]["std_clip"] == (0.001, 1.0)
    kw = algo_kwargs(resolve_config("ppo", "lattice_iid", "elbow"))
    assert kw["use_sde"] is False and "sde_sample_freq" not in kw


def test_ppo_updates_with_fused_adam_unless_the_config_chooses_the_optimizer():
    """PPO's default optimizer keywords are SB3's (eps 1e-5) with torch's fused Adam, and the model trains with
    it; keywords or an optimizer of the config's own are left as they are; SAC keeps SB3's Adam."""
    kw = algo_kwargs(resolve_config("ppo", "lattice", "elbow"))
    assert kw["policy_kwargs"]["optimizer_kwargs"] == {"eps": 1e-5, "fused": True}
    model = build_model(resolve_config("ppo", "lattice", "Pendulum-v1", overrides={"device": "cpu"}), "Pendulum-v1")
    assert model.policy.optimizer.defaults["fused"] is True and model.policy.optimizer.defaults["eps"] == 1e-5
    own = ["policy_kwargs.optimizer_kwargs.eps=1e-5"]
    assert algo_kwargs(resolve_config("ppo", "lattice", "elbow", hyperparams=own))["policy_kwargs"][
        "optimizer_kwargs"
    ] == {"eps": 1e-5}
    rmsprop = ["policy_kwargs.optimizer_class=RMSprop"]
    kw = algo_kwargs(resolve_config("ppo", "isotropic", "elbow", hyperparams=rmsprop))
    assert kw["policy_kwargs"]["optimizer_kwargs"] is None
    assert algo_kwargs(resolve_config("sac", "lattice", "ant"))["policy_kwargs"]["optimizer_kwargs"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(algo="ddpg"), "Unknown algo 'ddpg'; choose one of: sac, ppo, recurrent_ppo, a2c, tqc"),
        (dict(noise="brown"), "Unknown noise 'brown'; choose one of: isotropic, gsde, lattice, lattice_iid, pink"),
        (dict(env="Ant-v9"), "did you mean 'Ant-v5'"),
        (dict(env="reorent"), "did you mean 'reorient'"),
        (dict(overrides={"timesteps": 0}), "timesteps must be a positive integer at most 2147483647, got 0"),
        (dict(overrides={"n_envs": -2}), "n_envs must be a positive integer at most 512, got -2"),
        (dict(overrides={"noise_period": 0}), "noise_period must be a positive integer or -1"),
        (dict(hyperparams=["learning_rate"]), "Malformed --hyperparams 'learning_rate': write key=value"),
        (dict(hyperparams=["learning_rate=[1,"]), "Malformed value in --hyperparams"),
        (dict(hyperparams=["lerning_rate=1e-3"]), "Unknown SAC keyword 'lerning_rate'; did you mean 'learning_rate'?"),
        (dict(hyperparams=["policy_kwargs.alfa=1"]), "Unknown LatticeSACPolicy keyword 'alfa'"),
        (dict(hyperparams=["use_sde=true"]), "'use_sde' cannot be set in a config: set it with --noise"),
        (dict(hyperparams=["policy_kwargs.noise=gsde"]), "set it with --noise"),
        (dict(noise="isotropic", overrides={"noise_period": 8}), "noise_period=8 has no effect with noise 'isotropic'"),
        (dict(hyperparams=["normalize=3"]), "normalize must be false or a mapping"),
        (dict(hyperparams=["learning_rate=.e5"]), "Malformed value in --hyperparams"),
        (dict(hyperparams=["env=Foo-v0"]), "set env with --env"),
        (dict(overrides={"device": "gpu7"}), "Unknown device 'gpu7'; choose auto, cpu, cuda"),
    ],
)
def test_bad_settings_raise_clear_errors(kwargs, message):
    args = dict(algo="sac", noise="lattice", env="ant") | kwargs
    with pytest.raises(ConfigError) as e:
        resolve_config(**args)
    assert message in str(e.value)


def test_unknown_key_in_a_config_file(tmp_path: Path):
    path = tmp_path / "task.yaml"
    path.write_text("env: Ant-v5\nsac:\n  timestep: 100\n")
    with pytest.raises(ConfigError, match=r"Unknown config key 'timestep' .*did you mean 'timesteps'"):
        resolve_config("sac", "lattice", config=path)
    path.write_text("env: Ant-v5\nlearning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="algorithm keywords go under 'hyperparams'"):
        resolve_config("sac", "lattice", config=path)


def test_shared_blocks_live_in_one_file():
    """No two config files define the same algorithm block: tasks include the shared files instead."""
    blocks: dict[str, list[str]] = {}
    for path in CONFIG_DIR.rglob("*.yaml"):
        for algo, block in load_yaml(path).items():
            if algo in ("sac", "ppo") and isinstance(block, dict) and "hyperparams" in block:
                blocks.setdefault(yaml.safe_dump(block["hyperparams"], sort_keys=True), []).append(path.name)
    assert all(len(files) == 1 for files in blocks.values()), blocks
