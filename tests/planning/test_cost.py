"""latent_cost: known values for every metric and reduction, and clear shape errors."""

from __future__ import annotations

import pytest
import torch

from worldjepa.planning import colored_noise, latent_cost, make_latent_cost


def test_known_values_for_each_metric_and_reduction() -> None:
    # one batch row, one sample, H = 3 steps at distances (1, 2, 3) along one of D = 2 axes
    pred = torch.tensor([[[[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]]])  # (1, 1, 3, 2)
    goal = torch.zeros(1, 2)
    mse = torch.tensor([0.5, 2.0, 4.5])  # mean over D of squared distance
    l1 = torch.tensor([0.5, 1.0, 1.5])
    assert torch.allclose(latent_cost(pred, goal), mse.sum().view(1, 1))  # default: sum
    assert torch.allclose(latent_cost(pred, goal, reduce="final"), mse[-1].view(1, 1))
    assert torch.allclose(latent_cost(pred, goal, reduce="mean_path"), mse.mean().view(1, 1))
    assert torch.allclose(latent_cost(pred, goal, metric="l1"), l1.sum().view(1, 1))
    w = torch.tensor([0.0, 1.0, 2.0])
    assert torch.allclose(latent_cost(pred, goal, path_weights=w), (w * mse).sum().view(1, 1))
    assert torch.allclose(latent_cost(pred, goal, reduce="mean_path", path_weights=w),
                          ((w * mse).sum() / 3.0).view(1, 1))
    per_step_goal = pred[:, 0]  # (1, 3, 2): each step is exactly at its own goal
    assert torch.equal(latent_cost(pred, per_step_goal), torch.zeros(1, 1))


def test_path_cost_prefers_reaching_the_goal_early_final_cost_does_not() -> None:
    early = torch.tensor([[1.0], [1.0], [1.0]])  # (H, D): at the goal from step 1
    late = torch.tensor([[0.0], [0.0], [1.0]])  # reaches it only at the last step
    pred = torch.stack([early, late])[None]  # (1, 2, 3, 1)
    goal = torch.ones(1, 1)
    final = latent_cost(pred, goal, reduce="final")[0]
    path = latent_cost(pred, goal)[0]
    assert final[0] == final[1]
    assert path[0] < path[1]


def test_shape_errors_name_the_expected_shapes() -> None:
    pred = torch.zeros(2, 5, 3, 4)
    with pytest.raises(ValueError, match=r"\(B, D\) = \(2, 4\) or \(B, H, D\) = \(2, 3, 4\)"):
        latent_cost(pred, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"pred must be \(B, S, H, D\)"):
        latent_cost(pred[0], torch.zeros(2, 4))
    with pytest.raises(ValueError, match="metric"):
        latent_cost(pred, torch.zeros(2, 4), metric="cos")
    with pytest.raises(ValueError, match=r"path_weights must be \(H,\)"):
        latent_cost(pred, torch.zeros(2, 4), path_weights=torch.ones(4))


def test_make_latent_cost_composes_rollout_and_goal() -> None:
    goal = torch.tensor([[1.0, -1.0]])

    def rollout(actions):  # (B, S, H, A) -> (B, S, H, D): integrate the actions
        return torch.cumsum(actions, dim=2)

    cost_fn = make_latent_cost(rollout, goal, reduce="final", metric="l1")
    actions = torch.tensor([[[[0.5, -0.5], [0.5, -0.5]], [[0.0, 0.0], [0.0, 0.0]]]])  # (1, 2, 2, 2)
    assert torch.allclose(cost_fn(actions), torch.tensor([[0.0, 1.0]]))


def test_colored_noise_has_unit_variance_and_beta_controls_smoothness() -> None:
    g = torch.Generator().manual_seed(0)

    def lag1(x):  # (N, H, A) -> mean correlation of consecutive steps
        return (x[:, 1:] * x[:, :-1]).mean() / x.var()

    white = colored_noise((20000, 8, 1), 0.0, g, torch.device("cpu"))
    red = colored_noise((20000, 8, 1), 2.0, g, torch.device("cpu"))
    assert abs(float(white.var()) - 1.0) < 0.05 and abs(float(red.var()) - 1.0) < 0.05
    assert abs(float(lag1(white))) < 0.05
    assert float(lag1(red)) > 0.5
