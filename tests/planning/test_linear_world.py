"""A linear latent world ``z_{t+1} = z_t + M a_t`` with a known optimum, for planner tests."""

from __future__ import annotations

import torch
from torch import Tensor

from worldjepa.planning import latent_cost


class LinearWorld:
    """``z_{t+1} = z_t + M a_t`` with a fixed invertible ``M`` ``(D, D)``, ``A = D``."""

    def __init__(self, dim: int, batch: int = 1, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g))
        self.M = q * torch.linspace(0.8, 1.2, dim)  # (D, D), well conditioned
        self.z0 = torch.randn(batch, dim, generator=g) * 0.5  # (B, D)
        # a goal reachable in 3 steps with actions of norm <= 0.5 per coordinate
        a_true = (torch.rand(batch, 3, dim, generator=g) - 0.5)  # (B, 3, A)
        self.goal = self.z0 + (a_true @ self.M.T).sum(1)  # (B, D)

    def rollout(self, actions: Tensor) -> Tensor:
        """``(B, S, H, A) -> (B, S, H, D)`` states after each action."""
        return self.z0[:, None, None, :] + torch.cumsum(actions @ self.M.T, dim=2)

    def cost(self, actions: Tensor) -> Tensor:
        return latent_cost(self.rollout(actions), self.goal)  # (B, S)

    def final_error(self, actions: Tensor) -> Tensor:
        """Distance of the final state to the goal for ``(B, H, A)`` actions: ``(B,)``."""
        return (self.rollout(actions[:, None])[:, 0, -1] - self.goal).norm(dim=-1)


def test_linear_world_goal_is_reachable_and_cost_is_zero_there() -> None:
    world = LinearWorld(3, batch=2, seed=0)
    # solve M a = goal - z0 exactly in one step, then stay
    a0 = torch.linalg.solve(world.M, (world.goal - world.z0).T).T  # (B, A)
    acts = torch.zeros(2, 4, 3)
    acts[:, 0] = a0
    torch.testing.assert_close(world.final_error(acts), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(world.cost(acts[:, None])[:, 0], torch.zeros(2), atol=1e-9,
                               rtol=0)
