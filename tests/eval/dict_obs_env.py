"""A tiny goal-conditioned env with a Dict observation (as Gymnasium-Robotics' envs have):
``observation`` (position, velocity), ``achieved_goal`` (position), ``desired_goal``. Importing
this file registers ``TinyGoal-v0`` (``--env-module tests/eval/dict_obs_env.py``)."""

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class TinyGoalEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        box = lambda n: spaces.Box(-1.0, 1.0, (n,), np.float32)  # noqa: E731
        self.observation_space = spaces.Dict({"observation": box(4), "achieved_goal": box(2), "desired_goal": box(2)})
        self.action_space = spaces.Box(-0.2, 0.2, (2,), np.float32)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.8, 0.8, 2)
        self.vel = np.zeros(2)
        self.goal = self.np_random.uniform(-0.8, 0.8, 2)
        return self._obs(), {}

    def step(self, action):
        self.vel = np.clip(np.asarray(action, np.float64), -0.2, 0.2)
        self.pos = np.clip(self.pos + self.vel, -1.0, 1.0)
        return self._obs(), 0.0, False, False, {}

    def _obs(self):
        return {"observation": np.concatenate([self.pos, self.vel]).astype(np.float32),
                "achieved_goal": self.pos.astype(np.float32), "desired_goal": self.goal.astype(np.float32)}

    def render(self):
        img = np.zeros((16, 16, 3), np.uint8)
        x, y = ((self.pos + 1) / 2 * 15).round().astype(int)
        img[y, x] = 255
        return img


if "TinyGoal-v0" not in gym.registry:
    gym.register("TinyGoal-v0", entry_point=TinyGoalEnv)
