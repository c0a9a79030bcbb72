"""Each run setting declared once: the flags, the defaults layer, the checks and the docs' table come from
``lattice.experiments.settings``; every value is valid or refused with exit 2 and one line before anything is
written; a setting that has no effect with the chosen noise is refused, by every path alike."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest
import yaml

from lattice.experiments import cli
from lattice.experiments.build import buffer_bytes, check_sizes, physical_memory, task_env
from lattice.experiments.errors import ConfigError
from lattice.experiments.load import CONFIG_DIR, dump_config, load_yaml
from lattice.experiments.settings import NORMALIZE_KEYWORDS, SETTINGS, default_text, defaults, settings_table
from lattice.experiments.sweep import expand
from lattice.experiments.validate import RunConfig, resolve_run_config, validate_run_config
from lattice.noise import NOISES

PENDULUM = dict(algo="ppo", noise="lattice", env="Pendulum-v1")


def test_defaults_yaml_says_what_the_declaration_says():
    declared = defaults()
    assert declared.pop("env") == "ant"  # no line in defaults.yaml: a file with an env is a task file
    assert load_yaml(CONFIG_DIR / "defaults.yaml") == declared


def test_run_config_has_one_field_per_setting_in_the_declared_order():
    assert [f.name for f in dataclasses.fields(RunConfig)] == [s.name for s in SETTINGS]
    config = resolve_run_config(**PENDULUM)
    assert list(config.as_dict()) == [s.name for s in SETTINGS] and config == config.as_dict()
    assert config["seed"] is config.seed == 0 and config.policy_kwargs is config.hyperparams["policy_kwargs"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1  # type: ignore[misc]


def _flag_actions() -> dict[str, argparse.Action]:
    return {action.dest: action for action in cli.train_parser()._actions}


def test_every_setting_has_a_flag_whose_help_shows_the_declared_default():
    actions = _flag_actions()
    for s in SETTINGS:
        action = actions[s.name]
        assert s.flag in action.option_strings and (s.short is None or s.short in action.option_strings)
        assert action.help is not None and f"default: {default_text(s)}" in action.help, (s.name, action.help)
    assert "default: 4" in actions["noise_period"].help and "default: 1000000" in actions["timesteps"].help
    assert "only for noises gsde, lattice" in actions["noise_period"].help


def test_help_is_generated_from_the_declaration(capsys):
    with pytest.raises(SystemExit) as e:
        cli.train_parser().parse_args(["--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for s in SETTINGS:
        assert s.flag in out
    assert "--normalize NORMALIZE" in out and "-n TIMESTEPS, --timesteps TIMESTEPS" in out


@pytest.mark.parametrize(
    ("flag", "value", "key"),
    [
        ("--seed", "3", "seed"),
        ("-n", "2e3", "timesteps"),
        ("--n-envs", "2", "n_envs"),
        ("--vec-env", "dummy", "vec_env"),
        ("--noise-period", "-1", "noise_period"),
        ("--eval-freq", "500", "eval_freq"),
        ("--eval-episodes", "3", "eval_episodes"),
        ("--save-freq", "1000", "save_freq"),
        ("--device", "cpu", "device"),
        ("--normalize", "{norm_obs: true, clip_obs: 5.0}", "normalize"),
        ("--max-episode-steps", "50", "max_episode_steps"),
        ("--env-kwargs", "{g: 9.0}", "env_kwargs"),
    ],
)
def test_a_flag_and_its_hyperparams_key_give_the_same_config(flag, value, key):
    args = cli.train_parser().parse_args(["--algo", "ppo", "--noise", "lattice", "--env", "Pendulum-v1", flag, value])
    flags = cli.setting_flags(args)
    by_flag = resolve_run_config(flags.pop("algo"), flags.pop("noise"), flags.pop("env"), overrides=flags)
    by_hyperparams = resolve_run_config(**PENDULUM, hyperparams=[f"{key}={value}"])
    assert by_flag == by_hyperparams and by_flag != resolve_run_config(**PENDULUM)


@pytest.mark.parametrize(
    ("flags", "item"),
    [(["--noise-period", "8"], "noise_period=8"), (["--seed", "-1"], "seed=-1"), (["-n", "2.5"], "timesteps=2.5")],
)
def test_a_flag_and_its_hyperparams_key_are_refused_alike(flags, item):
    args = cli.train_parser().parse_args(["--algo", "ppo", "--noise", "isotropic", "--env", "Pendulum-v1", *flags])
    given = cli.setting_flags(args)
    with pytest.raises(ConfigError) as by_flag:
        resolve_run_config(given.pop("algo"), given.pop("noise"), given.pop("env"), overrides=given)
    with pytest.raises(ConfigError) as by_hyperparams:
        resolve_run_config("ppo", "isotropic", "Pendulum-v1", hyperparams=[item])
    assert str(by_flag.value) == str(by_hyperparams.value)


# Every kind of value a setting cannot take: refused by lattice-train with exit 2, one line, nothing written.
REFUSED = [
    (["--hyperparams", "normalize.clip_obs=-1"], "normalize.clip_obs must be a number in (0, inf), got -1"),
    (["--hyperparams", "normalize.clip_reward=0"], "normalize.clip_reward must be a number in (0, inf), got 0"),
    (["--hyperparams", "normalize.gamma=1.5"], "normalize.gamma must be a number in (0, 1], got 1.5"),
    (["--hyperparams", "normalize.epsilon=.nan"], "normalize.epsilon must be a number in (0, inf), got nan"),
    (["--hyperparams", "normalize.norm_obs=yes please"], "normalize.norm_obs must be true or false"),
    (["--hyperparams", "normalize.training=false"], "normalize.training cannot be set in a config"),
    (["--normalize", "{bogus: 1}"], "Unknown VecNormalize keyword 'bogus' in normalize; valid: norm_obs"),
    (["--n-envs", "100000"], "n_envs must be a positive integer at most 512, got 100000 (an env in a worker process"),
    (["--seed", "4294967296"], "seed must be a non-negative integer at most 2147483647, got 4294967296"),
    (["-n", "1e12"], "timesteps must be a positive integer at most 2147483647, got 1000000000000"),
    (["--max-episode-steps", "0"], "max_episode_steps must be a positive integer or null, got 0"),
    (["--reward-weights", "{alive: .inf}"], "reward_weights.alive must be a finite number, got inf"),
    (["--env-kwargs", "[1, 2]"], "env_kwargs must be a mapping, got [1, 2]"),
    (["--hyperparams", "n_steps=1e11"], "The run's buffer needs"),
    (
        ["--hyperparams", "policy_kwargs.log_std_init=1000"],
        "log_std_init=1000 is out of range: it must be in [-20, 20]",
    ),
    (["--hyperparams", "noise_period=8", "--noise", "pink"], "noise_period=8 has no effect with noise 'pink'"),
    (["--noise", "gsde", "--hyperparams", "policy_kwargs.alpha=0.5"], "noise 'gsde' has no parameter 'alpha'"),
    (["--algo", "sac", "--hyperparams", "n_steps=1000000000000"], "n_steps=1000000000000 is out of range"),
    (["--algo", "sac", "--hyperparams", "buffer_size=1e11"], "The run's buffer needs"),
    (["--algo", "ddpg"], "Unknown algo 'ddpg'; choose one of: sac, ppo, recurrent_ppo, a2c, tqc"),
]


@pytest.mark.parametrize(("args", "message"), REFUSED, ids=[m[:40] for _, m in REFUSED])
def test_a_value_a_setting_cannot_take_exits_2_with_one_line_and_writes_nothing(args, message, tmp_path, capsys):
    if "The run's buffer needs" in message and physical_memory() is None:
        pytest.skip("this OS does not say how much memory the machine has")
    argv = ["--algo", "ppo", "--noise", "lattice", "--env", "Pendulum-v1", "--log-dir", str(tmp_path / "logs")]
    code = cli.train_main([*argv, "--no-progress-bar", *args])  # later flags win: args may name another algo
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: ") and message in err
    assert not (tmp_path / "logs").exists()


def test_buffer_memory_counts_every_array_of_the_buffer():
    config = resolve_run_config("sac", "isotropic", "Pendulum-v1", hyperparams=["buffer_size=1000"])
    env = task_env(config)
    obs, act = env.observation_space, env.action_space  # float32 (3,) and (1,)
    env.close()
    # 1000 rows of observation and next observation (2 x 12 bytes), action (4), reward, done, timeout (3 x 4)
    assert buffer_bytes(config, obs, act)[0] == 1000 * (2 * 12 + 4 + 12)
    optimized = dataclasses.replace(config, hyperparams={**config.hyperparams, "optimize_memory_usage": True})
    assert buffer_bytes(optimized, obs, act)[0] == 1000 * (12 + 4 + 12)
    check_sizes(config, obs, act)  # 40 kB fits anywhere


@pytest.mark.parametrize("noise", list(NOISES))
def test_the_resolved_config_holds_only_settings_that_have_an_effect(noise):
    config = resolve_run_config("ppo", noise, "Pendulum-v1")
    params = {"alpha", "std_clip", "std_reg", "noise_exponent", "noise_horizon"} & set(config.policy_kwargs)
    assert params == set(NOISES[noise].param_names)
    assert (config.noise_period is None) == (not NOISES[noise].state_dependent)


def test_a_version_0_2_config_with_every_noise_parameter_at_its_default_still_resolves(tmp_path: Path):
    """Files written by version 0.2 carry every noise's parameters and noise_period 4 whatever the noise."""
    old = resolve_run_config("ppo", "isotropic", "Pendulum-v1").as_dict()
    old["noise_period"] = 4
    old["hyperparams"]["policy_kwargs"].update(
        alpha=1.0, std_clip=[0.001, 1.0], std_reg=0.0, noise_exponent=1.0, noise_horizon=None
    )
    dump_config(old, tmp_path / "config.yml")
    again = resolve_run_config(config=tmp_path / "config.yml")
    assert again.noise_period is None and "alpha" not in again.policy_kwargs
    assert again == resolve_run_config("ppo", "isotropic", "Pendulum-v1")
    as_lattice = resolve_run_config(noise="lattice", config=tmp_path / "config.yml")
    assert as_lattice.noise_period == 4 and as_lattice.policy_kwargs["alpha"] == 1.0  # null: the default


def test_noise_blocks_of_a_task_file_apply_to_their_noise_only():
    lattice = resolve_run_config("ppo", "lattice", "elbow")
    assert lattice.policy_kwargs["std_clip"] == [0.001, 10.0]  # shared/paper_ppo_myosuite.yaml's lattice: block
    gsde = resolve_run_config("ppo", "gsde", "elbow")
    assert "std_clip" not in gsde.policy_kwargs and gsde.policy_kwargs["full_std"] is False


def test_a_task_file_setting_a_parameter_of_another_noise_is_refused(tmp_path: Path):
    path = tmp_path / "task.yaml"
    path.write_text("env: Pendulum-v1\nppo:\n  noise_period: 8\n  hyperparams: {policy_kwargs: {alpha: 0.5}}\n")
    with pytest.raises(ConfigError, match="noise_period=8 has no effect with noise 'pink'"):
        resolve_run_config("ppo", "pink", config=path)
    path.write_text("env: Pendulum-v1\nppo:\n  hyperparams: {policy_kwargs: {alpha: 0.5}}\n")
    with pytest.raises(ConfigError, match="noise 'pink' has no parameter 'alpha'"):
        resolve_run_config("ppo", "pink", config=path)
    assert resolve_run_config("ppo", "lattice", config=path).policy_kwargs["alpha"] == 0.5


def test_a_sweep_grid_setting_noise_period_for_a_noise_it_does_not_apply_to_is_refused():
    grid = {"algo": ["ppo"], "env": ["Pendulum-v1"], "seed": [0], "noise": ["isotropic", "lattice"]}
    assert len(expand({"name": "ok", "grid": {**grid, "noise_period": [4]}})) == 2  # the default: no effect, allowed
    with pytest.raises(ConfigError, match="noise_period=8 has no effect with noise 'isotropic'"):
        expand({"name": "bad", "grid": {**grid, "noise_period": [4, 8]}})


def test_validation_is_idempotent_on_what_it_writes():
    config = resolve_run_config("recurrent_ppo", "pink", "elbow", hyperparams=["normalize=true"])
    assert config.normalize == {} and validate_run_config(config.as_dict()) == config
    assert yaml.safe_load(yaml.safe_dump(config.as_dict())) == config


def test_the_docs_table_has_a_row_per_setting_and_normalize_keyword():
    table = settings_table()
    lines = table.strip().splitlines()
    assert len(lines) == 2 + len(SETTINGS) + len(NORMALIZE_KEYWORDS)
    for s in SETTINGS:
        assert f"| `{s.name}` |" in table and f"`{default_text(s)}`" in table
    assert "only for noises gsde, lattice" in table and "`normalize.clip_obs`" in table


@pytest.mark.parametrize("algo", ["a2c", "tqc"])
def test_a2c_and_tqc_train_with_lattice_noise(algo, tmp_path, capsys):
    tiny = ["n_steps=16"] if algo == "a2c" else ["learning_starts=16", "batch_size=16", "buffer_size=500"]
    argv = [
        *("--algo", algo, "--noise", "lattice", "--env", "Pendulum-v1", "-n", "64", "--eval-freq", "64"),
        *("--eval-episodes", "1", "--save-freq", "64", "--log-dir", str(tmp_path), "--no-progress-bar"),
        *("--hyperparams", "max_episode_steps=16", *tiny),
    ]
    assert cli.train_main(argv) == 0, capsys.readouterr().err
    (run_dir,) = (tmp_path / algo).iterdir()
    config = load_yaml(run_dir / "config.yml")
    assert (config["algo"], config["noise"], config["noise_period"]) == (algo, "lattice", 4)


def test_a_version_0_2_run_folder_config_with_another_noises_parameters_still_reads(tmp_path: Path):
    """Version 0.2 recorded the MyoSuite block's std_clip (not its default) in the config.yml of isotropic runs."""
    from lattice.experiments.config import validate

    old = resolve_run_config("ppo", "isotropic", "elbow").as_dict()
    old["noise_period"], old["hyperparams"]["policy_kwargs"]["std_clip"] = 4, [0.001, 10.0]
    dump_config(old, tmp_path / "config.yml")
    assert validate(old) == resolve_run_config("ppo", "isotropic", "elbow")  # a run folder read back
    assert resolve_run_config(config=tmp_path / "config.yml") == resolve_run_config("ppo", "isotropic", "elbow")
    with pytest.raises(ConfigError, match="noise 'isotropic' has no parameter 'std_clip'"):  # given now: refused
        resolve_run_config(config=tmp_path / "config.yml", hyperparams=["policy_kwargs.std_clip=[0.01, 1.0]"])
