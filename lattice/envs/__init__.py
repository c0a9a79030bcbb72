"""Environments: building a task's env, the paper's MyoSuite reward terms, per-episode energy; the overactuated
benchmark env lives in ``lattice.envs.overactuated``.

Everything here needs only gymnasium and numpy; MyoSuite (the ``experiments`` extra) is imported when a ``myo*`` id
is first used.

Wrapper stack of one training or evaluation env (inside out)::

    gymnasium.make(env_id, **env_kwargs)     MuJoCo (Ant-v5, ...) or MyoSuite (myo*, registered on first use)
    SimulationGuard(max_qvel)                MuJoCo envs: a step on which the simulation diverged ends the episode
    RewardWeights(weights)                   optional: the paper's MyoSuite reward (e.g. pos_dist_diff, alive)
    EpisodeEnergy                            episode means of effort / act² / a², success at the episode's end
    Monitor(info_keywords=...)               added by SB3's make_vec_env; writes them to the monitor CSV

Energy: for a model with activation states (MyoSuite muscles, ``model.na > 0``) the per-step
effort ‖act‖₂ / n_muscles (the MyoChallenge effort) and mean(act²); for every env the mean of the applied
action squared, mean(a²) (Ant: proportional to its control cost). Each is averaged over the episode's steps and
reported in ``info`` at the episode's last step, so SB3's Monitor (which keeps only the last step's value of an
info key) records the episode aggregate.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Callable
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np

# Info keys (at an episode's last step) written by EpisodeEnergy: per-episode means.
EFFORT = "ep_effort"  # ‖act‖₂ / n_muscles, MyoChallenge's effort
ACT_SQ = "ep_act_sq"  # mean over muscles of act²
ACTION_SQ = "ep_action_sq"  # mean over actuators of a² (the action applied, clipped to the action space)
SUCCESS = "is_success"  # SB3's key: the task's `solved` flag at the episode's last step
DIVERGED = "diverged"  # SimulationGuard's key: the episode ended on a step where the simulation diverged
ENERGY_KEYS = (EFFORT, ACT_SQ, ACTION_SQ)


def ensure_registered(env_id: str) -> None:
    """Import the package that registers ``env_id`` (MyoSuite for ``myo*`` ids; importing it is slow)."""
    if env_id.startswith("myo") and env_id not in gym.registry:
        if importlib.util.find_spec("myosuite") is None:
            raise ValueError(
                f"{env_id!r} is a MyoSuite env and MyoSuite is not installed: pip install 'sb3-lattice[experiments]'"
            )
        importlib.import_module("myosuite")
    elif env_id.startswith("lattice/"):
        importlib.import_module("lattice.envs.overactuated")


def check_env_id(env_id: str, extra_names: list[str] | tuple[str, ...] = ()) -> None:
    """Raise ValueError naming the closest registered ids (and task names) if ``env_id`` is not registered."""
    ensure_registered(env_id)
    if env_id in gym.registry:
        return
    if importlib.util.find_spec("myosuite") is not None:
        importlib.import_module("myosuite")  # so that suggestions include the MyoSuite ids
    choices = list(extra_names) + list(gym.registry)
    close = difflib.get_close_matches(env_id, choices, n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise ValueError(f"Unknown env {env_id!r}{hint} (task names: {', '.join(extra_names)}; or any gymnasium id)")


def registered_episode_length(env_id: str) -> int | None:
    """The episode length ``env_id`` is registered with (None: no time limit)."""
    ensure_registered(env_id)
    return gym.spec(env_id).max_episode_steps


def control_dt(env: gym.Env) -> float:
    """Seconds of simulated time per env step (for a video's fps); MyoSuite's ``render_fps`` does not match it."""
    unwrapped: Any = env.unwrapped
    for name in ("dt", "_ctrl_dt"):
        value = getattr(unwrapped, name, None)
        if value:
            return float(value)
    return float(unwrapped.model.opt.timestep * unwrapped.frame_skip)


def _activation_reader(env: gym.Env) -> Callable[[], np.ndarray] | None:
    """A function returning the env's current muscle activations, or None if it has none: MuJoCo's activation
    state ``data.act`` (MyoSuite), or the ``activations`` attribute of this package's overactuated env."""
    unwrapped: Any = env.unwrapped
    if hasattr(unwrapped, "activations"):
        return lambda: unwrapped.activations
    model = getattr(unwrapped, "model", None)
    if model is None or getattr(model, "na", 0) == 0:
        return None
    return lambda: unwrapped.data.act  # looked up each step: the state after that step


class SimulationGuard(gym.Wrapper):
    """End the episode, with reward 0, on a step where the MuJoCo simulation diverged.

    Contacts of a hand with a free object (the MyoSuite pen and die) sometimes blow up: within one control step
    the object reaches speeds of 1e3 to 1e7 (m/s or rad/s). Two things then happen, neither of them the task:

    - MuJoCo notices only once an acceleration exceeds 1e10; it warns (``mjWARN_BADQACC``) and resets the state
      to ``qpos0``. MyoSuite ends the episode then, but its reward terms compare the reset state with the last one.
    - Before that, the step's state is finite but absurd: a pen 37 km from the hand gave ``pos_align_diff`` a
      reward of about −3.7M, which then dominates the episode's return and, through VecNormalize's running
      variance of returns, scales every later reward of the run down (about 200× in the run where it was found).

    A step diverged if MuJoCo's instability counters rose during it, or the state is not finite, or some joint
    speed exceeds ``max_qvel`` (rad/s or m/s; under a trained pen policy every hand joint stays below 13.1 rad/s in
    99.9% of steps). Such a step returns ``terminated=True`` and reward 0 (nothing of the task happened on it);
    ``info["diverged"]`` says which steps these were, every step, so Monitor's CSV counts the episodes that ended
    this way.

    :param env: A MuJoCo env (``env.unwrapped.data`` is its ``mujoco.MjData``).
    :param max_qvel: The largest plausible joint speed (any joint, in its own units).
    """

    def __init__(self, env: gym.Env, max_qvel: float = 1e3):
        super().__init__(env)
        if max_qvel <= 0:
            raise ValueError(f"max_qvel must be positive, got {max_qvel}")
        self.max_qvel = float(max_qvel)
        import mujoco  # an env with MjData has mujoco installed

        self._warnings = [
            int(w)
            for w in (
                mujoco.mjtWarning.mjWARN_BADQPOS,
                mujoco.mjtWarning.mjWARN_BADQVEL,
                mujoco.mjtWarning.mjWARN_BADQACC,
            )
        ]

    @property
    def _data(self) -> Any:
        return self.env.unwrapped.data  # type: ignore[attr-defined]

    def _instabilities(self) -> int:
        """MuJoCo's count of bad positions, velocities and accelerations since the data was last reset."""
        return sum(int(self._data.warning[w].number) for w in self._warnings)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        before = self._instabilities()
        obs, reward, terminated, truncated, info = self.env.step(action)
        qpos, qvel = self._data.qpos, self._data.qvel
        diverged = (
            self._instabilities() > before
            or not (np.isfinite(qpos).all() and np.isfinite(qvel).all())
            or bool(np.abs(qvel).max(initial=0.0) > self.max_qvel)
        )
        info[DIVERGED] = diverged
        if diverged:
            return obs, 0.0, True, truncated, info
        return obs, reward, terminated, truncated, info


def _wraps(env: gym.Env, wrapper: type[gym.Wrapper]) -> bool:
    """Whether ``wrapper`` is in ``env``'s chain of wrappers."""
    while isinstance(env, gym.Wrapper):
        if isinstance(env, wrapper):
            return True
        env = env.env
    return False


def is_mujoco_env(env: gym.Env) -> bool:
    """Whether ``env`` simulates with MuJoCo (its unwrapped env holds a ``mujoco.MjData`` as ``data``)."""
    data = getattr(env.unwrapped, "data", None)
    return type(data).__name__ == "MjData" and type(data).__module__.startswith("mujoco")


class RewardWeights(gym.Wrapper):
    """Replace a MyoSuite env's reward by a weighted sum of its reward terms, with the paper's extra terms.

    MyoSuite reports its reward terms every step in ``info["rwd_dict"]``. This wrapper adds, as the paper's
    code did (arXiv 2305.20065, MyoSuite experiments):

    - ``<term>_diff``: the step's change of a term, ``rwd[term](t) − rwd[term](t−1)`` (e.g. ``pos_dist_diff`` is
      the decrease of the position distance, since ``rwd["pos_dist"] = −distance``);
    - ``alive``: 1 while the object is not dropped (``not rwd["done"]``).

    reward = Σ_k weight_k · term_k. Terms with weight 0 may be listed; unknown names raise at the first reset.

    :param env: A MyoSuite env.
    :param weights: Term name → weight.
    """

    def __init__(self, env: gym.Env, weights: dict[str, float]):
        super().__init__(env)
        if not hasattr(env.unwrapped, "get_reward_dict"):
            raise ValueError(
                f"reward_weights reweight a MyoSuite env's reward terms; {env.spec.id if env.spec else env} is not a "
                "MyoSuite env: set reward_weights to null"
            )
        self.weights = {str(k): float(v) for k, v in weights.items()}
        self._previous: dict[str, float] = {}

    def _reward_terms(self) -> dict[str, float]:
        """The env's reward terms for its current state (also needed right after a reset, for the diffs)."""
        unwrapped: Any = self.env.unwrapped
        obs_dict = unwrapped._get_obs_dict(unwrapped._accessor)
        return {k: float(np.asarray(v).squeeze()) for k, v in unwrapped.get_reward_dict(obs_dict).items()}

    def _check(self, terms: dict[str, float]) -> None:
        known = set(terms) | {f"{k}_diff" for k in terms} | {"alive"}
        unknown = sorted(set(self.weights) - known)
        if unknown:
            raise ValueError(
                f"Unknown reward term(s) {unknown} for {self.env.spec.id if self.env.spec else self.env}; "
                f"valid terms: {sorted(known)}"
            )

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self._previous = self._reward_terms()
        self._check(self._previous)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        if info.get(DIVERGED, False):  # the terms of a diverged state are not the task's (see SimulationGuard)
            return obs, 0.0, terminated, truncated, info
        terms = {k: float(np.asarray(v).squeeze()) for k, v in info["rwd_dict"].items()}
        values = dict(terms)
        values.update({f"{k}_diff": terms[k] - self._previous[k] for k in terms})
        values["alive"] = 1.0 - float(terms["done"])
        self._previous = terms
        reward = sum(weight * values[key] for key, weight in self.weights.items())
        return obs, reward, terminated, truncated, info


class EpisodeEnergy(gym.Wrapper):
    """Accumulate per-step energy and report the episode means (and success) in ``info`` at the episode's end.

    Keys (see the module docstring): ``ep_effort`` and ``ep_act_sq`` when the model has activation states
    (MyoSuite), ``ep_action_sq`` always, ``is_success`` when the env reports ``solved``, ``diverged`` when a
    ``SimulationGuard`` is below.
    """

    def __init__(self, env: gym.Env):
        super().__init__(env)
        if not isinstance(env.action_space, gym.spaces.Box):
            raise ValueError(f"Energy logging needs a continuous (Box) action space, got {env.action_space}")
        self._low, self._high = env.action_space.low, env.action_space.high
        self._activations = _activation_reader(env)
        self.has_muscles = self._activations is not None
        self.guarded = _wraps(env, SimulationGuard)
        self._sums = np.zeros(3)
        self._steps = 0

    @property
    def info_keywords(self) -> tuple[str, ...]:
        """The episode-level keys this wrapper reports, for SB3's ``Monitor(info_keywords=...)``."""
        keys = (EFFORT, ACT_SQ, ACTION_SQ, SUCCESS) if self.has_muscles else (ACTION_SQ,)
        return (*keys, DIVERGED) if self.guarded else keys

    def reset(self, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        self._sums[:] = 0.0
        self._steps = 0
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        applied = np.clip(np.asarray(action, dtype=np.float64), self._low, self._high)
        self._sums[2] += np.mean(applied**2)
        if self._activations is not None:
            act = self._activations()  # the activation state after the step
            self._sums[0] += np.linalg.norm(act) / act.size  # ‖act‖₂ / n_muscles
            self._sums[1] += np.mean(act**2)
        self._steps += 1
        if terminated or truncated:
            means = self._sums / self._steps
            info[ACTION_SQ] = float(means[2])
            if self.has_muscles:
                info[EFFORT], info[ACT_SQ] = float(means[0]), float(means[1])
                info[SUCCESS] = bool(info.get("solved", False))
        return obs, reward, terminated, truncated, info


def make_env(
    env_id: str,
    env_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    reward_weights: dict[str, float] | None = None,
    render_mode: str | None = None,
) -> EpisodeEnergy:
    """One env with the experiment wrappers (without Monitor, which SB3's ``make_vec_env`` adds); a MuJoCo env
    gets a ``SimulationGuard`` (a diverged step ends the episode with reward 0).

    :param env_id: A gymnasium id (MyoSuite ids are registered on demand).
    :param env_kwargs: Keywords for the env's constructor (e.g. MyoSuite's goal ranges).
    :param max_episode_steps: Override the registered episode length.
    :param reward_weights: Replace the reward by weighted MyoSuite reward terms (see ``RewardWeights``).
    :param render_mode: ``rgb_array`` for videos.
    """
    ensure_registered(env_id)
    kwargs = dict(env_kwargs or {})
    if max_episode_steps is not None:
        kwargs["max_episode_steps"] = max_episode_steps
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(env_id, **kwargs)
    if is_mujoco_env(env):
        env = SimulationGuard(env)
    if reward_weights:
        env = RewardWeights(env, reward_weights)
    return EpisodeEnergy(env)
