"""Building what a resolved config describes: the task's env, the algorithm's constructor keywords, and the checks
that need the machine or the env (the device is available; the buffers fit in memory).

Reads the typed fields of a ``RunConfig`` (``lattice.experiments.validate``); a resolved config's dict (as modules
that still pass dicts hold it) is taken as one (``RunConfig.of``).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces

from lattice.envs import EpisodeEnergy, make_env
from lattice.experiments.errors import ConfigError
from lattice.experiments.keywords import resolve_class
from lattice.experiments.validate import RunConfig
from lattice.noise import NOISES

# The algorithms whose update runs torch's fused Adam unless the config chooses the optimizer's keywords: PPO's
# gradient steps at the paper's minibatch of 32 are mostly fixed costs, and fused Adam does in one kernel what
# torch's default Adam does in about ten passes over every parameter: 15-19 % less time per gradient step on one
# CPU core (benchmarks/update_overhead.py). The same algorithm, equal to float rounding but not bitwise; SB3's own
# Adam is ``policy_kwargs: {optimizer_kwargs: {eps: 1.0e-5}}``. Fused Adam runs on the CPU from torch 2.4 on.
FUSED_ADAM_ALGOS = ("ppo", "recurrent_ppo")
_FUSED_ADAM_ON_CPU = tuple(int(part) for part in th.__version__.split(".")[:2]) >= (2, 4)


def _fused_adam(run: RunConfig, policy_kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """SB3's Adam keywords (eps 1e-5) with ``fused=True``, where the run uses Adam with SB3's keywords on a device
    with fused Adam (the CPU, CUDA); else None (the config's or SB3's choice stands)."""
    adam = policy_kwargs.get("optimizer_class", th.optim.Adam) is th.optim.Adam
    device_ok = _FUSED_ADAM_ON_CPU and not run.device.startswith("mps")
    if run.algo in FUSED_ADAM_ALGOS and adam and policy_kwargs.get("optimizer_kwargs") is None and device_ok:
        return {"eps": 1e-5, "fused": True}
    return None


def algo_kwargs(config: RunConfig | Mapping[str, Any]) -> dict[str, Any]:
    """The algorithm's constructor keywords from a resolved config (classes imported, noise wired in, fused Adam for
    PPO where the config leaves the optimizer's keywords to the package: ``FUSED_ADAM_ALGOS``)."""
    run = RunConfig.of(config)
    spec = NOISES[run.noise]
    kwargs = copy.deepcopy(run.hyperparams)
    policy_kwargs = kwargs.pop("policy_kwargs")
    for key, value in list(policy_kwargs.items()):
        if key == "activation_fn":
            policy_kwargs[key] = resolve_class(value, th.nn)
        elif key == "optimizer_class":
            policy_kwargs[key] = resolve_class(value, th.optim)
        elif key.endswith("_class"):
            policy_kwargs[key] = resolve_class(value)
        elif isinstance(value, list) and key in ("std_clip",):
            policy_kwargs[key] = tuple(value)
    for key, value in list(kwargs.items()):
        if key.endswith("_class"):
            kwargs[key] = resolve_class(value)
        elif key == "train_freq" and isinstance(value, list):
            kwargs[key] = tuple(value)
    policy_kwargs["noise"] = run.noise
    fused = _fused_adam(run, policy_kwargs)
    if fused is not None:
        policy_kwargs["optimizer_kwargs"] = fused
    kwargs["policy_kwargs"] = policy_kwargs
    kwargs["use_sde"] = spec.state_dependent
    if spec.state_dependent:
        kwargs["sde_sample_freq"] = run.noise_period
    return kwargs


def task_env(config: RunConfig | Mapping[str, Any], render_mode: str | None = None, **env_kwargs: Any) -> EpisodeEnergy:
    """One env of a resolved config's task (``lattice.envs.make_env`` with its keywords, episode length and reward
    weights); ``env_kwargs`` are added to the config's."""
    run = RunConfig.of(config)
    return make_env(
        run.env,
        {**run.env_kwargs, **env_kwargs},
        run.max_episode_steps,
        run.reward_weights,
        render_mode=render_mode,
    )


def check_device(device: str) -> None:
    """Raise ConfigError unless torch can use ``device`` here (``auto`` always can): a device that is not available
    is an error, not SB3's silent fallback to the CPU."""
    available = ["auto", "cpu", *(f"cuda:{i}" for i in range(th.cuda.device_count()))]
    if th.backends.mps.is_available():
        available.append("mps")
    if device in ("auto", "cpu"):
        return
    parsed = th.device(device)
    if parsed.type == "cuda" and th.cuda.is_available() and (parsed.index or 0) < th.cuda.device_count():
        return
    if parsed.type == "mps" and th.backends.mps.is_available():
        return
    raise ConfigError(f"Device {device!r} is not available on this machine; available: {', '.join(available)}")


def physical_memory() -> int | None:
    """This machine's memory in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _bytes(space: spaces.Space) -> int:
    """Bytes of one value of ``space`` as SB3's buffers store it (in the space's dtype)."""
    if isinstance(space, spaces.Dict):
        return sum(_bytes(s) for s in space.spaces.values())
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape)) * np.dtype(space.dtype).itemsize
    return spaces.flatdim(space) * 8


def buffer_bytes(config: RunConfig, observation_space: spaces.Space, action_space: spaces.Space) -> tuple[int, str]:
    """Bytes of the run's buffer (the replay buffer, or the rollout buffer with the copy its reading makes), and
    what they are made of (which settings to lower)."""
    run = config
    hp = run.hyperparams
    obs, act = _bytes(observation_space), _bytes(action_space)
    if "buffer_size" in hp:  # off-policy: ReplayBuffer, buffer_size rows (next observations too, unless optimized)
        rows = max(hp["buffer_size"] // run.n_envs, 1) * run.n_envs
        per_row = obs * (1 if hp.get("optimize_memory_usage") else 2) + act + 3 * 4  # rewards, dones, timeouts
        return rows * per_row, f"buffer_size={hp['buffer_size']} transitions of {per_row} bytes; lower buffer_size"
    # on-policy: RolloutBuffer, n_steps x n_envs rows of float32 (six scalars), copied once when it is read
    rows = hp["n_steps"] * run.n_envs
    per_row = obs + act + 6 * 4
    lstm = run.policy_kwargs.get("lstm_hidden_size")
    if lstm:  # RecurrentPPO keeps the actor's and critic's (h, c) states of every step
        per_row += 4 * lstm * run.policy_kwargs.get("n_lstm_layers", 1) * 4
    return 2 * rows * per_row, (
        f"n_steps x n_envs = {rows} steps of {per_row} bytes, copied once when read; lower n_steps or n_envs"
    )


def check_sizes(
    config: RunConfig | Mapping[str, Any], observation_space: spaces.Space, action_space: spaces.Space
) -> None:
    """Raise ConfigError if the run's buffer cannot fit in this machine's memory (SB3 would fail to allocate it,
    or the system would kill the run once it fills)."""
    memory = physical_memory()
    needed, why = buffer_bytes(RunConfig.of(config), observation_space, action_space)
    if memory is not None and needed > memory:
        raise ConfigError(
            f"The run's buffer needs {needed / 2**30:,.1f} GiB, more than this machine's memory "
            f"({memory / 2**30:,.1f} GiB): {why}"
        )
