"""An overactuated reaching benchmark: a point mass in the plane pulled by N muscles in antagonistic pairs.

``gymnasium.make("lattice/OveractuatedReach-v0", n_actuators=N)``. Two degrees of freedom, N redundant actuators
(N even, 4 to thousands): the setting in which independent noise on every actuator cancels out (DEP-RL,
Schumacher et al., ICLR 2023), while noise through a shared latent does not.

Muscle i pulls along the unit vector d_i at angle 2πi/N (muscles i and i + N/2 pull in opposite directions: an
antagonistic pair). The action a ∈ [−1, 1]^N is the excitation e = (a + 1)/2 ∈ [0, 1]; activations follow
first-order dynamics, act ← act + (e − act)·dt/τ. The force on the mass is

    F = (2 F_max / N) Σᵢ actᵢ dᵢ,

scaled by 1/N so that the reachable forces do not depend on N. Independent action noise of std σ on every muscle
then moves F by about F_max σ √(2/N): less the more muscles there are; a shared latent direction does not average
out. The mass (1 kg, viscous damping) moves in the box [−1, 1]² with inelastic walls.

Each episode draws a goal uniformly in the disc of radius 0.8 around the start (the origin). Reward per step:
−‖p − g‖ − energy_weight · mean(act²). ``info["solved"]``: the mass is within 0.1 of the goal. Observation:
position, velocity, goal − position, and the N activations.

The step is a few NumPy operations on length-N vectors: tens of thousands of steps per second on one core
(``python benchmarks/env_speed.py``).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

ENV_ID = "lattice/OveractuatedReach-v0"


class OveractuatedReach(gym.Env[np.ndarray, np.ndarray]):
    """A point mass reaching a goal with N antagonistic muscles; see the module docstring.

    :param n_actuators: Number of muscles N (even, >= 4).
    :param max_force: F_max (N): the largest force of one direction's muscles together is about 0.64 F_max.
    :param tau: Activation time constant τ (s).
    :param damping: Viscous damping of the mass (N·s/m).
    :param energy_weight: Weight of mean(act²) in the reward.
    :param goal_radius: Goals are drawn uniformly in the disc of this radius.
    :param success_radius: Distance to the goal under which ``info["solved"]`` is true.
    :param render_mode: ``rgb_array``: ``render()`` draws the arena (top view) as a width × height RGB image.
    :param width: Image width in pixels.
    :param height: Image height in pixels.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}  # noqa: RUF012 (gymnasium's convention)
    dt = 0.02  # s per step

    def __init__(
        self,
        n_actuators: int = 64,
        max_force: float = 10.0,
        tau: float = 0.05,
        damping: float = 2.0,
        energy_weight: float = 0.1,
        goal_radius: float = 0.8,
        success_radius: float = 0.1,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 360,
    ):
        if not isinstance(n_actuators, int) or n_actuators < 4 or n_actuators % 2:
            raise ValueError(f"n_actuators must be an even integer >= 4 (antagonistic pairs), got {n_actuators!r}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.n_actuators = n_actuators
        self.render_mode, self.width, self.height = render_mode, int(width), int(height)
        self.max_force, self.tau, self.damping = float(max_force), float(tau), float(damping)
        self.energy_weight, self.goal_radius, self.success_radius = (
            float(energy_weight),
            float(goal_radius),
            float(success_radius),
        )
        angles = 2.0 * np.pi * np.arange(n_actuators) / n_actuators
        # (2 F_max / N) dᵢ as columns: F = force_map @ act
        self._force_map = (2.0 * self.max_force / n_actuators) * np.stack([np.cos(angles), np.sin(angles)])
        self._rate = min(1.0, self.dt / self.tau)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(n_actuators,), dtype=np.float32)
        # |F| <= 2 F_max, so the speed stays below the terminal 2 F_max / damping; |g − p| <= goal_radius + √2 < 3
        v_max = 2.0 * self.max_force / self.damping
        high = np.concatenate([np.full(2, 1.0), np.full(2, v_max), np.full(2, 3.0), np.ones(n_actuators)])
        low = np.concatenate([-high[:6], np.zeros(n_actuators)])
        self.observation_space = gym.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.position = np.zeros(2)
        self.velocity = np.zeros(2)
        self.goal = np.zeros(2)
        self.activations = np.zeros(n_actuators)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.position, self.velocity, self.goal - self.position, self.activations]).astype(
            np.float32
        )

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        radius = self.goal_radius * np.sqrt(self.np_random.uniform())  # uniform in the disc
        angle = self.np_random.uniform(0.0, 2.0 * np.pi)
        self.goal = radius * np.array([np.cos(angle), np.sin(angle)])
        self.position = np.zeros(2)
        self.velocity = np.zeros(2)
        self.activations = np.zeros(self.n_actuators)
        return self._obs(), {"distance": float(np.linalg.norm(self.goal))}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        excitation = 0.5 * (np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0) + 1.0)
        self.activations = self.activations + self._rate * (excitation - self.activations)
        force = self._force_map @ self.activations
        # semi-implicit Euler: velocity first, then position with the new velocity
        self.velocity = self.velocity + self.dt * (force - self.damping * self.velocity)
        position = self.position + self.dt * self.velocity
        outside = np.abs(position) > 1.0  # inelastic walls: stop the normal velocity
        if outside.any():
            position = np.clip(position, -1.0, 1.0)
            self.velocity = np.where(outside, 0.0, self.velocity)
        self.position = position
        distance = float(np.linalg.norm(self.goal - self.position))
        energy = float(np.mean(self.activations**2))
        reward = -distance - self.energy_weight * energy
        info = {"distance": distance, "energy": energy, "solved": distance < self.success_radius}
        return self._obs(), reward, False, False, info

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        """Top view of the arena: the goal's success disc (green), the mass (blue), and each muscle as a spoke from
        the mass along its pull direction, as long and as red as its activation."""
        if self.render_mode != "rgb_array":
            return None
        h, w = self.height, self.width
        scale = 0.45 * min(w, h)  # pixels per metre: the box [-1, 1]² fills 90% of the shorter side
        rows, cols = np.mgrid[0:h, 0:w]
        x, y = (cols - w / 2) / scale, (h / 2 - rows) / scale  # world coordinates of each pixel
        image = np.full((h, w, 3), 255, dtype=np.uint8)
        image[(np.abs(x) > 1.0) | (np.abs(y) > 1.0)] = 200  # outside the walls
        goal = (x - self.goal[0]) ** 2 + (y - self.goal[1]) ** 2 <= self.success_radius**2
        image[goal] = (60, 180, 75)
        px, py = self.position
        directions = self._force_map / np.linalg.norm(self._force_map, axis=0)
        for act, (dx, dy) in zip(self.activations, directions.T, strict=True):
            length = 0.05 + 0.3 * act  # metres
            t = np.linspace(0.0, length, max(2, int(length * scale)))
            r = np.clip((h / 2 - (py + t * dy) * scale).astype(int), 0, h - 1)
            c = np.clip((w / 2 + (px + t * dx) * scale).astype(int), 0, w - 1)
            image[r, c] = (int(255 * act), 60, int(255 * (1 - act)) // 2)
        image[(x - px) ** 2 + (y - py) ** 2 <= 0.04**2] = (0, 90, 200)
        return image


gym.register(ENV_ID, entry_point="lattice.envs.overactuated:OveractuatedReach", max_episode_steps=100)
