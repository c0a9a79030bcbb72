"""Time of one sample + log_prob + backward step for each exploration noise, as a ratio to gSDE; and of one
rollout step that redraws the noise (``sde_sample_freq=1``).

    python benchmarks/distribution_speed.py [--batch 256] [--latent 256] [--actions 8 39 63 80 290] [--envs 16]

Every noise runs in the same process, interleaved round by round; each time is the median over rounds and each
ratio the median over rounds of the ratio within a round, so the ratios hold on a shared, noisy machine. One step
is what a SAC gradient step asks of the distribution: draw the noise matrices (``reset_noise``), build the
distribution for a batch of latent features, sample actions with the reparametrisation trick, evaluate their
log-probability and back-propagate.

A rollout step is what PPO asks at each step with ``sde_sample_freq=1``: redraw the noise of every env, build the
distribution for the envs' latent features and sample, without gradients. Lattice draws such a once-used noise
from its marginal (d + n normals per env); "matrices" is the plain path that draws P_x, P_a per env
(``LatticeNoiseDistribution.fresh_draws = False``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch as th
from stable_baselines3.common.distributions import DiagGaussianDistribution, StateDependentNoiseDistribution

from lattice.distributions import LatticeNoiseDistribution

NOISES = ("isotropic", "gsde", "lattice full_std=False", "lattice full_std=True")


def make_step(noise: str, batch: int, latent_dim: int, action_dim: int) -> Callable[[], None]:
    """A closure running one sample + log_prob + backward step of ``noise`` on fixed random features."""
    gen = th.Generator().manual_seed(0)
    x = th.randn(batch, latent_dim, generator=gen).requires_grad_()
    if noise == "isotropic":
        iso = DiagGaussianDistribution(action_dim)
        iso_net, iso_log_std = iso.proba_distribution_net(latent_dim, log_std_init=-0.5)

        def step() -> None:
            iso.proba_distribution(iso_net(x), iso_log_std)
            actions = iso.sample()
            iso.log_prob(actions).sum().backward()

        return step

    dist: StateDependentNoiseDistribution
    if noise == "gsde":
        dist = StateDependentNoiseDistribution(action_dim, learn_features=True)
    else:
        full_std = noise.endswith("True")
        dist = LatticeNoiseDistribution(action_dim, full_std=full_std, learn_features=True)
    net, log_std = dist.proba_distribution_net(latent_dim, log_std_init=-0.5, latent_sde_dim=latent_dim)
    assert isinstance(net, th.nn.Linear)
    with th.no_grad():  # a trained-looking action layer, not SB3's tiny orthogonal init
        net.weight.normal_(0.0, latent_dim**-0.5, generator=gen)

    def sde_step() -> None:
        dist.sample_weights(log_std)
        dist.proba_distribution(net(x), log_std, x)
        actions = dist.sample()
        dist.log_prob(actions).sum().backward()

    return sde_step


ROLLOUT_NOISES = ("gsde", "lattice full_std=False", "lattice full_std=True")


def make_rollout_step(noise: str, envs: int, latent_dim: int, action_dim: int, fresh: bool) -> Callable[[], None]:
    """A closure running one rollout step of ``envs`` envs that redraws ``noise`` (``fresh``: Lattice's marginal
    draw; else its matrices)."""
    gen = th.Generator().manual_seed(0)
    x = th.randn(envs, latent_dim, generator=gen)
    dist: StateDependentNoiseDistribution
    if noise == "gsde":
        dist = StateDependentNoiseDistribution(action_dim)
    else:
        dist = LatticeNoiseDistribution(action_dim, full_std=noise.endswith("True"))
        dist.fresh_draws = fresh
    net, log_std = dist.proba_distribution_net(latent_dim, log_std_init=-0.5, latent_sde_dim=latent_dim)

    def rollout_step() -> None:
        with th.no_grad():
            dist.sample_weights(log_std, batch_size=envs)
            dist.proba_distribution(net(x), log_std, x)
            dist.sample()

    rollout_step()  # the first draw of a run is matrices: the marginal path starts once a draw served one step
    return rollout_step


def measure(steps: dict[str, Callable[[], None]], rounds: int, min_time: float) -> dict[str, list[float]]:
    """Seconds per step of each closure in every round, the closures interleaved round by round."""
    per_round: dict[str, int] = {}
    for name, step in steps.items():  # warm up and size each round to about ``min_time`` seconds
        step()
        start, n = time.perf_counter(), 0
        while time.perf_counter() - start < min_time:
            step()
            n += 1
        per_round[name] = max(1, n)
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(per_round[name]):
                step()
            samples[name].append((time.perf_counter() - start) / per_round[name])
    return samples


def ratio(samples: dict[str, list[float]], name: str, baseline: str = "gsde") -> float:
    """Median over rounds of the time ratio to ``baseline`` within each round: a round's closures ran back to back,
    so a slow spell of the machine mostly cancels in the ratio."""
    return statistics.median(t / b for t, b in zip(samples[name], samples[baseline], strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256, help="batch size B")
    parser.add_argument("--latent", type=int, default=256, help="latent dimension d")
    parser.add_argument("--actions", type=int, nargs="+", default=[8, 39, 63, 80, 290], help="action dims n")
    parser.add_argument("--envs", type=int, default=16, help="parallel envs of a rollout step")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (median reported)")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per timing round and noise")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: least noisy)")
    args = parser.parse_args()
    th.set_num_threads(args.threads)

    print(f"sample + log_prob + backward, batch {args.batch}, latent d = {args.latent}, {args.threads} thread(s)")
    print("| n actions | " + " | ".join(NOISES) + " |")
    print("|---" * (len(NOISES) + 1) + "|")
    for action_dim in args.actions:
        steps = {noise: make_step(noise, args.batch, args.latent, action_dim) for noise in NOISES}
        samples = measure(steps, args.rounds, args.min_time)
        cells = [f"{1e3 * statistics.median(samples[noise]):.2f} ms ({ratio(samples, noise):.2f}×)" for noise in NOISES]
        print(f"| {action_dim} | " + " | ".join(cells) + " |", flush=True)

    names = [f"{noise} matrices" if noise != "gsde" else noise for noise in ROLLOUT_NOISES]
    names += [f"{noise} marginal" for noise in ROLLOUT_NOISES[1:]]
    print(f"\nrollout step redrawing the noise (sde_sample_freq=1), {args.envs} envs, latent d = {args.latent}")
    print("| n actions | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for action_dim in args.actions:
        rollout = {}
        for name in names:
            noise = name.removesuffix(" matrices").removesuffix(" marginal")
            rollout[name] = make_rollout_step(noise, args.envs, args.latent, action_dim, name.endswith("marginal"))
        samples = measure(rollout, args.rounds, args.min_time)
        cells = [f"{1e3 * statistics.median(samples[name]):.2f} ms ({ratio(samples, name):.2f}×)" for name in names]
        print(f"| {action_dim} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
