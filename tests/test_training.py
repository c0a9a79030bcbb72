"""Short real training runs: every algorithm × noise on MuJoCo and MyoSuite environments; and runs of the
experiment layer (``lattice.experiments.training``): budgets that cannot train are refused, the final evaluation runs
once, the progress bar ends at 100%."""

import contextlib
import io
import math
import re

import gymnasium as gym
import myosuite  # noqa: F401  (registers the myo* environments)
import numpy as np
import pytest
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.env_util import make_vec_env

from lattice import NOISES, LatticeActorCriticPolicy, LatticeRecurrentActorCriticPolicy, LatticeSACPolicy

ENVS = ["InvertedPendulum-v5", "Ant-v5", "myoElbowPose1D6MRandom-v0"]
ALGOS = {
    "sac": (SAC, LatticeSACPolicy, dict(learning_starts=100, batch_size=64, buffer_size=1000, gradient_steps=1)),
    "ppo": (PPO, LatticeActorCriticPolicy, dict(n_steps=64, batch_size=32, n_epochs=2)),
    "recurrent_ppo": (RecurrentPPO, LatticeRecurrentActorCriticPolicy, dict(n_steps=64, batch_size=32, n_epochs=2)),
}


class ActionRecorder(gym.Wrapper):
    """Records every action the algorithm sends to the environment."""

    def __init__(self, env: gym.Env):
        super().__init__(env)
        self.actions: list[np.ndarray] = []

    def step(self, action):
        self.actions.append(np.array(action, copy=True))
        return self.env.step(action)


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("algo", sorted(ALGOS))
@pytest.mark.parametrize("noise", sorted(NOISES))
def test_short_training_run(env_id: str, algo: str, noise: str) -> None:
    cls, policy, kwargs = ALGOS[algo]
    recorders: list[ActionRecorder] = []

    def wrap(env: gym.Env) -> gym.Env:
        recorders.append(ActionRecorder(env))
        return recorders[-1]

    env = make_vec_env(env_id, n_envs=2, seed=0, wrapper_class=wrap)
    policy_kwargs = dict(noise=noise, net_arch=[64, 64])
    model = cls(
        policy,
        env,
        use_sde=NOISES[noise].state_dependent,
        sde_sample_freq=8,
        policy_kwargs=policy_kwargs,
        seed=0,
        device="cpu",
        **kwargs,
    )
    model.learn(256)

    # One more real update, then read the losses it logged.
    if isinstance(model, SAC):
        model.train(gradient_steps=2, batch_size=64)
        losses = ["train/actor_loss", "train/critic_loss", "train/ent_coef_loss"]
    else:
        model.train()
        losses = ["train/loss", "train/policy_gradient_loss", "train/value_loss"]
    for key in losses:
        value = model.logger.name_to_value[key]
        assert math.isfinite(value), (key, value)

    actions = np.concatenate([np.stack(r.actions) for r in recorders])
    assert len(actions) >= 256
    space = env.action_space
    assert np.isfinite(actions).all()
    assert (actions >= space.low).all() and (actions <= space.high).all()

    # The trained policy explores: at a fixed observation, stochastic actions (fresh noise matrices for the
    # state-dependent noises) differ from the deterministic one.
    obs = env.reset()
    deterministic, _ = model.predict(obs, deterministic=True)
    spread = []
    for _ in range(5):
        if NOISES[noise].state_dependent:
            model.policy.reset_noise(env.num_envs)
        spread.append(np.abs(model.predict(obs, deterministic=False)[0] - deterministic).max())
    assert max(spread) > 1e-6, spread


# -- runs of the experiment layer: budgets that train, one final evaluation, a progress bar that ends at 100% ----


def pendulum_config(algo: str, timesteps: int, *hyperparams: str, n_envs: int = 1) -> dict:
    """A resolved config for a run of a few hundred steps on Pendulum-v1 (evaluations of one 200-step episode)."""
    from lattice.experiments.config import resolve_config

    overrides = dict(timesteps=timesteps, n_envs=n_envs, eval_freq=50, eval_episodes=1, save_freq=10_000, device="cpu")
    return resolve_config(algo, "lattice", "Pendulum-v1", None, overrides, list(hyperparams))


BUDGETS_THAT_CANNOT_TRAIN = [
    # SAC's default learning_starts is 100: 100 steps of random actions and no update
    (("sac", 100), "timesteps=100 trains nothing: SAC makes its first update after learning_starts=100 steps"),
    (("ppo", 100, "n_steps=64", "batch_size=32"), "PPO collects n_steps x n_envs = 64 x 2 = 128 steps"),
    (("recurrent_ppo", 127, "n_steps=64", "batch_size=32"), "timesteps=127 is less than one rollout: RecurrentPPO"),
]


@pytest.mark.parametrize(("config", "message"), BUDGETS_THAT_CANNOT_TRAIN, ids=["sac", "ppo", "recurrent_ppo"])
def test_a_budget_that_cannot_train_is_refused_before_anything_is_written(config, message, tmp_path) -> None:
    from lattice.experiments.config import ConfigError
    from lattice.experiments.training import start_run

    with pytest.raises(ConfigError, match=re.escape(message)) as refused:
        start_run(pendulum_config(*config, n_envs=2), tmp_path / "logs")
    assert "\n" not in str(refused.value) and "(-n)" in str(refused.value)  # one line, naming the fix
    assert not (tmp_path / "logs").exists()


def test_the_smallest_budgets_that_train_are_accepted() -> None:
    from lattice.experiments.training import check_budget

    sac = SAC(LatticeSACPolicy, "Pendulum-v1", learning_starts=100, use_sde=True, device="cpu")
    check_budget(sac, 101, n_envs=1)  # one update, after step 101
    ppo = PPO(LatticeActorCriticPolicy, "Pendulum-v1", n_steps=64, batch_size=32, use_sde=True, device="cpu")
    check_budget(ppo, 128, n_envs=2)  # one rollout of 64 steps in each of 2 envs


def test_lattice_train_refuses_the_issues_sac_budget_with_exit_2_and_one_line(tmp_path, capsys) -> None:
    """The command of issue #33: Ant's SAC collects 10,000 random steps before its first update."""
    from lattice.experiments.cli import train_main

    args = ["--algo", "sac", "--noise", "lattice", "--env", "ant", "-n", "2000", "--log-dir", str(tmp_path / "logs")]
    assert train_main(args) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: timesteps=2000 trains nothing: SAC makes its first update after learning_starts=10000 steps of "
        "random actions; set timesteps (-n) above 10000, or learning_starts below 2000 "
        "(--hyperparams learning_starts=N)"
    ]
    assert not (tmp_path / "logs").exists()


# SB3 stops between collections: PPO's rollouts of 64 end a budget of 100 at 128; SAC's collections of
# train_freq = 8 steps end it at 104. The evaluation due at 100 is left to the final one, at the end.
ROUNDED_UP = {
    "ppo": (("ppo", 100, "n_steps=64", "batch_size=32"), 128),
    "sac": (("sac", 100, "learning_starts=32", "batch_size=32", "train_freq=8", "buffer_size=1000"), 104),
}


@pytest.fixture(scope="module", params=sorted(ROUNDED_UP))
def rounded_up_run(request, tmp_path_factory) -> tuple:
    """A run (with the progress bar) whose budget SB3 rounds up: (its folder, summary, printed output, last step)."""
    from lattice.experiments.training import start_run

    config, end = ROUNDED_UP[request.param]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # the bar too: rich writes to sys.stdout as it is when it writes
        run_dir, summary = start_run(pendulum_config(*config), tmp_path_factory.mktemp("logs"), progress_bar=True)
    return run_dir, summary, out.getvalue(), end


def test_the_final_evaluation_runs_once(rounded_up_run) -> None:
    from lattice.experiments.rundir import RunDir

    run_dir, summary, out, end = rounded_up_run
    evaluated = [int(line.split()[1].replace(",", "")) for line in out.splitlines() if line.startswith("eval ")]
    assert evaluated == [0, 50, end], out  # not 100 and then the end: the final policy is evaluated once
    assert RunDir(run_dir).evaluations()["timesteps"].tolist() == [0, 50, end]
    assert summary["timesteps"] == summary["final_eval"]["timesteps"] == end


def test_the_progress_bar_ends_at_100_percent(rounded_up_run) -> None:
    """The bar counts to the step count the run ends at (rich prints its last state when stdout is no terminal)."""
    _, _, out, end = rounded_up_run
    fractions = [(int(done), int(total)) for done, total in re.findall(r"(\d+)/(\d+)", out)]
    assert fractions and all(done <= total for done, total in fractions), out
    assert fractions[-1] == (end, end) and "100%" in out, out
