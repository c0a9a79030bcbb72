"""Per-gradient-step cost of PPO's update (``model.train()``) at the paper's MyoSuite settings, with a breakdown
by phase and variants of the update measured against it in the same process.

    taskset -c 1 python benchmarks/update_overhead.py [--noises isotropic gsde lattice]
        [--parts breakdown variants bitwise profile compile rollout] [--variants NAME ...] [--rounds 5]
        [--epochs 10] [--clock cpu|wall] [--compile-targets evaluate_actions mlp_extractor]
        [--compile-modes default reduce-overhead max-autotune-no-cudagraphs] [--env myoHandReorient8-v0]

The default is ``--parts breakdown variants bitwise`` for the three noises (about 6 minutes on one core); on a shared
machine ``--noises NOISE --epochs 2 --rounds 12`` gives tighter ratios in about a minute per noise.

Settings (configs/shared/paper_ppo_myosuite.yaml): 16 envs with VecNormalize, n_steps 128, batch 32, 10 epochs
(640 gradient steps per ``train()``), pi/vf [256, 256] ReLU, ortho_init False, use_expln True, full_std False, and
for Lattice std_clip (1e-3, 10); ``isotropic`` without gSDE, ``gsde`` and ``lattice`` with ``use_sde=True``. One
torch thread (pin the process to one core). The rollout buffer is filled once by ``collect_rollouts`` on the real
env and copied into every model, so each model trains on the same data from the same parameters. Times are this
thread's CPU time (``--clock cpu``), which other processes on a shared core do not inflate; ``--epochs`` sets the
epochs of each timed ``train()`` (the time per gradient step does not depend on it).

Parts:

* ``breakdown``: SB3's ``PPO.train`` loop replicated with a timer around each phase (fetching the minibatch,
  ``evaluate_actions``, the loss and its logging, ``zero_grad``, ``backward``, ``clip_grad_norm_``,
  ``optimizer.step``) next to the real ``model.train()``; for the baseline, and for each of ``--variants``.
* ``variants``: the real ``model.train()`` of every variant (``VARIANTS``: Adam's ``foreach`` / ``fused``, gradient
  clipping, torch flags), interleaved round by round from the same state; the median per step and the median (and
  quartiles) of the per-round ratios to the baseline.
* ``bitwise``: the largest difference of any parameter from the baseline's after one gradient step and after one
  ``train()``, from the same state and the same minibatch order (0 means bitwise identical).
* ``profile``: torch.profiler's top operators over one epoch (64 gradient steps) of the replicated loop.
* ``compile``: ``torch.compile`` of ``policy.evaluate_actions`` or of the MLPs (each target and mode): compile time
  (wall clock; set TORCHINDUCTOR_FORCE_DISABLE_CACHES=1 for a cold compile), graphs and graph breaks (from
  ``torch._dynamo``'s counters; TORCH_LOGS=recompiles,graph_breaks tells where), and the steady-state ``train()``
  per step against the baseline.
* ``rollout``: one policy forward of the rollout (16 observations) under ``th.no_grad()`` and ``th.inference_mode()``.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import myosuite  # noqa: F401  (registers the myo* environments)
import numpy as np
import torch as th
import torch.nn.functional as F
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from lattice import LatticeActorCriticPolicy

N_ENVS, N_STEPS, BATCH, EPOCHS = 16, 128, 32, 10
MINIBATCHES = N_ENVS * N_STEPS // BATCH  # 64 per epoch: 640 gradient steps per train()
PPO_KWARGS: dict[str, Any] = dict(
    n_steps=N_STEPS,
    batch_size=BATCH,
    n_epochs=EPOCHS,
    learning_rate=2.55673e-5,
    ent_coef=3.62109e-6,
    clip_range=0.3,
    gamma=0.99,
    gae_lambda=0.9,
    max_grad_norm=0.7,
    vf_coef=0.835671,
)
# name -> (noise, use_sde, the noise's own policy keywords)
NOISES: dict[str, tuple[str, bool, dict[str, Any]]] = {
    "isotropic": ("isotropic", False, {}),
    "gsde": ("gsde", True, {}),
    "lattice": ("lattice", True, {"std_clip": (1e-3, 10.0)}),
}


@dataclass
class Variant:
    """A change to the update: optimizer keywords (a model of its own), and/or a context entered around each
    ``train()`` (a monkeypatch or a torch flag, undone after it)."""

    name: str
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    context: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext
    noises: tuple[str, ...] = tuple(NOISES)  # the noises it applies to


@contextlib.contextmanager
def patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    """``owner.name = value`` for the duration of the block."""
    old = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, old)


def clip_with(**kwargs: Any) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """Replace ``th.nn.utils.clip_grad_norm_`` (which SB3's ``PPO.train`` looks up at each call) by itself with
    extra keywords."""
    return lambda: patched(th.nn.utils, "clip_grad_norm_", functools.partial(th.nn.utils.clip_grad_norm_, **kwargs))


def no_clip() -> contextlib.AbstractContextManager[Any]:
    """No gradient clipping at all: the lower bound of what clipping can save (changes the results)."""
    return patched(th.nn.utils, "clip_grad_norm_", lambda parameters, max_norm, *args, **kwargs: None)


@contextlib.contextmanager
def flush_denormal() -> Iterator[None]:
    th.set_flush_denormal(True)
    try:
        yield
    finally:
        th.set_flush_denormal(False)


def mkldnn_off() -> contextlib.AbstractContextManager[Any]:
    return th.backends.mkldnn.flags(enabled=False)


def no_validate_args() -> contextlib.AbstractContextManager[Any]:
    """torch.distributions without argument validation (SB3's Normal is built at every step with validation on)."""
    return patched(th.distributions.Distribution, "_validate_args", False)


VARIANTS: list[Variant] = [
    Variant("baseline"),
    # SB3's default optimizer_kwargs are {"eps": 1e-5} for Adam, replaced (not updated) by the policy's
    # optimizer_kwargs: without eps here, Adam would run with torch's eps = 1e-8. The first is SB3's default Adam
    # spelled out (the baseline itself unless the policy chooses other defaults).
    Variant("adam SB3 default", optimizer_kwargs={"eps": 1e-5}),
    Variant("adam foreach=True", optimizer_kwargs={"eps": 1e-5, "foreach": True}),
    Variant("adam fused=True", optimizer_kwargs={"eps": 1e-5, "fused": True}),
    Variant("clip foreach=True", context=clip_with(foreach=True)),
    Variant("clip foreach=False", context=clip_with(foreach=False)),
    Variant("no clipping (bound)", context=no_clip),
    Variant("flush_denormal", context=flush_denormal),
    Variant("mkldnn off", context=mkldnn_off),
    Variant("no validate_args", context=no_validate_args, noises=("isotropic", "gsde")),
]

# The clock every time is read from: this thread's CPU time by default (``--clock cpu``), which a shared core's other
# processes do not inflate (they do inflate the wall-clock time, ``--clock wall``).
CLOCK: list[Callable[[], float]] = [time.thread_time]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs")
COMPILE_TARGETS = ("evaluate_actions", "mlp_extractor")


def make_env(env_id: str) -> VecEnv:
    return VecNormalize(make_vec_env(env_id, n_envs=N_ENVS, seed=0))


def make_model(env: VecEnv, noise: str, optimizer_kwargs: dict[str, Any] | None = None) -> PPO:
    name, use_sde, own = NOISES[noise]
    policy_kwargs: dict[str, Any] = dict(
        noise=name,
        net_arch=dict(pi=[256, 256], vf=[256, 256]),
        activation_fn=th.nn.ReLU,
        ortho_init=False,
        use_expln=True,
        full_std=False,
        **own,
    )
    if optimizer_kwargs:
        policy_kwargs["optimizer_kwargs"] = optimizer_kwargs
    model = PPO(
        LatticeActorCriticPolicy, env, use_sde=use_sde, policy_kwargs=policy_kwargs, seed=0, device="cpu", **PPO_KWARGS
    )
    model.set_logger(configure_logger(0, None, "", False))
    return model


def fill_buffer(model: PPO) -> None:
    """One real rollout (``collect_rollouts``) into the model's buffer."""
    model._setup_learn(N_ENVS * N_STEPS, None)
    callback = model._init_callback(None)
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=N_STEPS)  # type: ignore[arg-type]


@dataclass
class Subject:
    """A model and the state that every timed ``train()`` starts from."""

    variant: Variant
    model: PPO
    params: dict[str, th.Tensor]
    optimizer_state: dict[str, Any]

    def reset(self, seed: int = 0) -> None:
        """Back to the starting parameters, a fresh Adam state and the same minibatch order."""
        self.model.policy.load_state_dict(self.params)
        self.model.policy.optimizer.load_state_dict(copy.deepcopy(self.optimizer_state))
        np.random.seed(seed)  # noqa: NPY002  (SB3's rollout buffer shuffles with the legacy global generator)
        th.manual_seed(seed)

    def train(self) -> float:
        """Seconds per gradient step of one ``model.train()`` from the starting state."""
        self.reset()
        with self.variant.context():
            start = CLOCK[0]()
            self.model.train()
            return (CLOCK[0]() - start) / (self.model.n_epochs * MINIBATCHES)


# Epochs of each timed train() (``--epochs``): PPO's 10 by default; fewer make shorter, more finely interleaved rounds
# on a noisy machine (the time per gradient step does not depend on it).
EPOCHS_TIMED = [EPOCHS]


def make_subjects(env: VecEnv, noise: str, variants: list[Variant]) -> list[Subject]:
    """One model per variant, all with the first one's parameters and rollout buffer."""
    subjects: list[Subject] = []
    for variant in variants:
        model = make_model(env, noise, variant.optimizer_kwargs)
        model.n_epochs = EPOCHS_TIMED[0]
        if subjects:
            model.rollout_buffer = copy.deepcopy(subjects[0].model.rollout_buffer)
            model.policy.load_state_dict(subjects[0].params)
        else:
            fill_buffer(model)
        params = copy.deepcopy(model.policy.state_dict())
        subjects.append(Subject(variant, model, params, copy.deepcopy(model.policy.optimizer.state_dict())))
    return subjects


def interleave(subjects: list[Subject], rounds: int, step: Callable[[Subject], float]) -> dict[str, list[float]]:
    """``step`` of every subject, round by round (after one warm-up round)."""
    for subject in subjects:
        step(subject)
    times: dict[str, list[float]] = {s.variant.name: [] for s in subjects}
    for _ in range(rounds):
        for subject in subjects:
            times[subject.variant.name].append(step(subject))
    return times


def report(noise: str, times: dict[str, list[float]], baseline: str = "baseline") -> None:
    """Median ms per step, and the median over rounds of the within-round ratio to ``baseline``."""
    base = times[baseline]
    for name, samples in times.items():
        ratios = sorted(t / b for t, b in zip(samples, base, strict=True))
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
        print(
            f"{noise:10s} {name:28s} {statistics.median(samples) * 1e3:7.3f} ms/step (min {min(samples) * 1e3:6.3f})"
            f"  ratio {statistics.median(ratios):5.3f} [quartiles {quartiles[0]:5.3f}-{quartiles[2]:5.3f}]"
            f" (min-to-min {min(samples) / min(base):5.3f}, {len(samples)} rounds)",
            flush=True,
        )


def run_variants(env: VecEnv, noise: str, variants: list[Variant], rounds: int) -> None:
    subjects = make_subjects(env, noise, [v for v in variants if noise in v.noises])
    report(noise, interleave(subjects, rounds, Subject.train))


def run_bitwise(env: VecEnv, noise: str, variants: list[Variant]) -> None:
    """Each variant's parameters against the baseline's, after one gradient step (the first minibatch, through the
    replicated loop) and after one whole ``train()``, from the same state and minibatch order. Adam moves every
    parameter by about the learning rate per step whatever the gradient's size, so a gradient entry that is pure
    rounding noise can move its parameter by a whole step either way: rounding-level differences then show as
    differences of the size of the training's own change after 640 steps."""
    subjects = make_subjects(env, noise, [v for v in variants if noise in v.noises])
    one_step: dict[str, dict[str, th.Tensor]] = {}
    whole: dict[str, dict[str, th.Tensor]] = {}
    for subject in subjects:
        subject.reset()
        with subject.variant.context():
            replicated_train(subject.model, dict.fromkeys(PHASES, 0.0), max_steps=1)
        one_step[subject.variant.name] = {k: v.clone() for k, v in subject.model.policy.state_dict().items()}
        subject.train()
        whole[subject.variant.name] = {k: v.clone() for k, v in subject.model.policy.state_dict().items()}
    start = subjects[0].params
    for label, after in (("1 step", one_step), ("train()", whole)):
        base = after[subjects[0].variant.name]
        moved = max(float((base[k] - start[k]).abs().max()) for k in base if base[k].is_floating_point())
        for name, params in after.items():
            diffs = {k: float((params[k] - base[k]).abs().max()) for k in base if base[k].is_floating_point()}
            worst = max(diffs, key=lambda k: diffs[k])
            identical = all(th.equal(params[k], base[k]) for k in base)
            print(
                f"{noise:10s} {label:7s} {name:28s} bitwise identical: {identical!s:5s}  max |Δ| {diffs[worst]:.2e}"
                f" ({worst}; the step itself moved a parameter by at most {moved:.2e})",
                flush=True,
            )


PHASES = ("minibatch", "evaluate_actions", "loss", "zero_grad", "backward", "clip_grad_norm", "optimizer.step")


def replicated_train(model: PPO, clock: dict[str, float], max_steps: int | None = None) -> None:
    """SB3 2.x's ``PPO.train`` loop (continuous actions, no clip_range_vf, no target_kl), with each phase's time
    added to ``clock``; stopped after ``max_steps`` gradient steps if given."""
    policy, buffer = model.policy, model.rollout_buffer
    policy.set_training_mode(True)
    model._update_learning_rate(policy.optimizer)
    clip_range = model.clip_range(model._current_progress_remaining)  # type: ignore[operator]
    now = CLOCK[0]
    steps = 0
    for _ in range(model.n_epochs):
        batches = buffer.get(model.batch_size)
        while True:
            t0 = now()
            rollout_data = next(batches, None)
            if rollout_data is None or steps == max_steps:
                break
            steps += 1
            t1 = now()
            values, log_prob, entropy = policy.evaluate_actions(rollout_data.observations, rollout_data.actions)
            t2 = now()
            values = values.flatten()
            advantages = rollout_data.advantages
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
            ratio = th.exp(log_prob - rollout_data.old_log_prob)
            policy_loss_1 = advantages * ratio
            policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
            policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
            policy_loss.item()
            th.mean((th.abs(ratio - 1) > clip_range).float()).item()
            value_loss = F.mse_loss(rollout_data.returns, values)
            value_loss.item()
            entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
            entropy_loss.item()
            loss = policy_loss + model.ent_coef * entropy_loss + model.vf_coef * value_loss
            with th.no_grad():
                log_ratio = log_prob - rollout_data.old_log_prob
                th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
            t3 = now()
            policy.optimizer.zero_grad()
            t4 = now()
            loss.backward()
            t5 = now()
            th.nn.utils.clip_grad_norm_(policy.parameters(), model.max_grad_norm)
            t6 = now()
            policy.optimizer.step()
            t7 = now()
            for phase, seconds in zip(
                PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6), strict=True
            ):
                clock[phase] += seconds


def run_breakdown(env: VecEnv, noise: str, variants: list[Variant], rounds: int) -> None:
    """Phases of the replicated loop next to the real ``train()``, for each variant (interleaved round by round);
    medians over rounds, shares of the variant's real ``train()``."""
    subjects = make_subjects(env, noise, [v for v in variants if noise in v.noises])
    keys = (*PHASES, "sum of phases", "real train()")
    samples: dict[str, dict[str, list[float]]] = {s.variant.name: {key: [] for key in keys} for s in subjects}
    for round_ in range(rounds + 1):
        for subject in subjects:
            clock = dict.fromkeys(PHASES, 0.0)
            subject.reset()
            with subject.variant.context():
                replicated_train(subject.model, clock)
            real = subject.train()
            if round_ == 0:  # warm-up
                continue
            times = samples[subject.variant.name]
            for phase in PHASES:
                times[phase].append(clock[phase] / (subject.model.n_epochs * MINIBATCHES))
            times["sum of phases"].append(sum(clock.values()) / (subject.model.n_epochs * MINIBATCHES))
            times["real train()"].append(real)
    for name, times in samples.items():
        total = statistics.median(times["real train()"])
        for key, values in times.items():
            ms = statistics.median(values) * 1e3
            print(f"{noise:10s} {name:24s} {key:18s} {ms:7.3f} ms/step  {ms / total / 1e3:6.1%}", flush=True)


def run_profile(env: VecEnv, noise: str, rows: int = 25) -> None:
    from torch.profiler import ProfilerActivity, profile

    (subject,) = make_subjects(env, noise, [VARIANTS[0]])
    subject.model.n_epochs = 1
    subject.reset()
    replicated_train(subject.model, dict.fromkeys(PHASES, 0.0))  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        replicated_train(subject.model, dict.fromkeys(PHASES, 0.0))
    print(f"== {noise}: torch.profiler, one epoch (64 gradient steps), by self CPU time")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows), flush=True)
    subject.model.n_epochs = EPOCHS_TIMED[0]


def run_compile(env: VecEnv, noise: str, rounds: int, modes: tuple[str, ...], targets: tuple[str, ...]) -> None:
    """Compile, in one model per (target, mode), ``policy.evaluate_actions`` (``evaluate_actions``) or the policy's
    MLPs in place (``mlp_extractor``: ``nn.Module.compile``, which keeps the parameters' names); time the first
    ``train()`` (which compiles) and then the steady state against an uncompiled baseline."""
    import torch._dynamo

    setups = [(target, mode) for target in targets for mode in modes]
    variants = [VARIANTS[0]] + [Variant(f"compile {target} {mode}") for target, mode in setups]
    subjects = make_subjects(env, noise, variants)
    for subject, (target, mode) in zip(subjects[1:], setups, strict=True):
        policy = subject.model.policy
        torch._dynamo.utils.counters.clear()
        compile_mode = None if mode == "default" else mode
        if target == "evaluate_actions":
            policy.evaluate_actions = th.compile(policy.evaluate_actions, mode=compile_mode)  # type: ignore[method-assign]
        else:
            policy.mlp_extractor.compile(mode=compile_mode)
        # wall-clock time: inductor compiles its C++ kernels in worker processes, outside this thread's CPU time
        clock, CLOCK[0] = CLOCK[0], time.perf_counter
        try:
            first = subject.train() * subject.model.n_epochs * MINIBATCHES
            steady = subject.train() * subject.model.n_epochs * MINIBATCHES
        finally:
            CLOCK[0] = clock
        counters = torch._dynamo.utils.counters
        breaks: dict[str, int] = {}
        for reason, count in counters["graph_break"].items():
            breaks[reason.splitlines()[0]] = breaks.get(reason.splitlines()[0], 0) + count
        print(
            f"{noise:10s} compile {target} {mode}: first train() {first:6.1f} s wall (then {steady:5.2f} s: "
            f"compile ≈ {first - steady:5.1f} s); graphs {counters['stats']['unique_graphs']}, graph breaks "
            f"{sum(breaks.values())}: {breaks}",
            flush=True,
        )
    report(noise, interleave(subjects, rounds, Subject.train))


def run_rollout(env: VecEnv, noise: str, rounds: int, repeats: int = 2000) -> None:
    """One rollout step of the policy (``policy(obs)`` for 16 envs) under no_grad and under inference_mode."""
    (subject,) = make_subjects(env, noise, [VARIANTS[0]])
    policy = subject.model.policy
    policy.set_training_mode(False)
    obs = th.as_tensor(subject.model.rollout_buffer.observations[0], dtype=th.float32)
    contexts: dict[str, Callable[[], contextlib.AbstractContextManager[Any]]] = {
        "no_grad": th.no_grad,
        "inference_mode": th.inference_mode,
    }

    def forward(context: Callable[[], contextlib.AbstractContextManager[Any]]) -> float:
        start = CLOCK[0]()
        for _ in range(repeats):
            with context():
                policy(obs)
        return (CLOCK[0]() - start) / repeats

    times: dict[str, list[float]] = {name: [] for name in contexts}
    for context in contexts.values():  # warm-up
        forward(context)
    for _ in range(rounds):
        for name, context in contexts.items():
            times[name].append(forward(context))
    for name, samples in times.items():
        ratio = statistics.median(t / b for t, b in zip(samples, times["no_grad"], strict=True))
        print(f"{noise:10s} rollout forward {name:15s} {statistics.median(samples) * 1e6:7.1f} µs  ratio {ratio:5.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="myoHandReorient8-v0")
    parser.add_argument("--noises", nargs="+", default=list(NOISES), choices=list(NOISES))
    parts = ("breakdown", "variants", "bitwise", "profile", "compile", "rollout")
    parser.add_argument("--parts", nargs="+", default=["breakdown", "variants", "bitwise"], choices=parts)
    parser.add_argument("--variants", nargs="+", default=None, help="names from VARIANTS (baseline always)")
    parser.add_argument("--compile-modes", nargs="+", default=list(COMPILE_MODES[:1]), choices=COMPILE_MODES)
    parser.add_argument("--compile-targets", nargs="+", default=list(COMPILE_TARGETS[:1]), choices=COMPILE_TARGETS)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="epochs per timed train() (PPO's: 10)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu", help="thread CPU time or wall-clock time")
    args = parser.parse_args()
    unknown = set(args.variants or ()) - {v.name for v in VARIANTS}
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {[v.name for v in VARIANTS]}")
    CLOCK[0] = time.thread_time if args.clock == "cpu" else time.perf_counter
    EPOCHS_TIMED[0] = args.epochs
    th.set_num_threads(1)
    variants = VARIANTS if args.variants is None else [VARIANTS[0]] + [v for v in VARIANTS if v.name in args.variants]
    env = make_env(args.env)
    print(f"torch {th.__version__}, {th.get_num_threads()} thread, env {args.env}, {args.clock} time", flush=True)
    for noise in args.noises:
        for part in args.parts:
            if part == "breakdown":
                run_breakdown(env, noise, variants if args.variants else VARIANTS[:1], args.rounds)
            elif part == "variants":
                run_variants(env, noise, variants, args.rounds)
            elif part == "bitwise":
                run_bitwise(env, noise, variants)
            elif part == "profile":
                run_profile(env, noise)
            elif part == "compile":
                run_compile(env, noise, args.rounds, tuple(args.compile_modes), tuple(args.compile_targets))
            else:
                run_rollout(env, noise, args.rounds)


if __name__ == "__main__":
    main()
