"""Every planner reaches the optimum of a linear latent world, inside bounds, reproducibly."""

from __future__ import annotations

import pytest
import torch

from worldjepa.planning import PLANNERS, CEM, make_planner

from test_linear_world import LinearWorld

H = 5
# small budgets keep the suite fast; MPPI needs a temperature in the cost's units
CONFIGS = {
    "cem": dict(samples=300, iterations=25, elites=30),
    "icem": dict(samples=300, iterations=25, elites=30),
    "mppi": dict(samples=300, iterations=30, temperature=0.01, noise_std=0.5, noise_decay=0.9),
    "gd": dict(samples=4, iterations=150, lr=0.1),
    "cem_gd": dict(samples=100, iterations=5, elites=10, gd_iterations=60),
}


def build(name: str, dim: int, **kw) -> object:
    return make_planner(name, low=-1.0, high=1.0, horizon=H, action_dim=dim,
                        **{**CONFIGS[name], **kw})


@pytest.mark.parametrize("dim", [2, 4])
@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_reaches_goal_much_closer_than_random(name: str, dim: int) -> None:
    world = LinearWorld(dim, batch=2, seed=dim)
    res = build(name, dim).plan(world.cost, batch=2)
    assert res.actions.shape == (2, H, dim) and res.cost.shape == (2,)
    err = world.final_error(res.actions)  # (2,)
    rand = torch.rand(64, H, dim, generator=torch.Generator().manual_seed(1)) * 2 - 1
    rand_err = torch.stack([world.final_error(rand[i:i + 1].expand(2, -1, -1))
                            for i in range(64)]).median()
    assert (err < 0.1).all(), f"{name}: final error {err} (random median {rand_err:.2f})"
    assert (err < 0.1 * rand_err).all()
    # the reported cost is the true cost of the returned actions
    torch.testing.assert_close(res.cost, world.cost(res.actions[:, None])[:, 0])


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_actions_stay_in_bounds_when_optimum_is_outside(name: str) -> None:
    low, high = torch.tensor([-0.5, -1.0]), torch.tensor([0.2, 1.0])
    world = LinearWorld(2)
    world.M = torch.eye(2)
    world.goal = torch.tensor([[10.0, -10.0]])  # unreachable: best is to push (0.2, -1) always
    planner = make_planner(name, low=low, high=high, horizon=H, **CONFIGS[name])
    acts = planner.plan(world.cost, batch=1).actions  # (1, H, 2)
    assert (acts >= low).all() and (acts <= high).all()
    torch.testing.assert_close(acts, torch.tensor([0.2, -1.0]).expand(1, H, 2),
                               atol=0.03, rtol=0)


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_same_seed_same_plan_other_seed_other_plan(name: str) -> None:
    world = LinearWorld(2, seed=3)
    a = build(name, 2, seed=7).plan(world.cost, batch=1).actions
    b = build(name, 2, seed=7).plan(world.cost, batch=1).actions
    c = build(name, 2, seed=8).plan(world.cost, batch=1).actions
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_batch_rows_are_solved_independently(name: str) -> None:
    world = LinearWorld(2, batch=3, seed=5)
    res = build(name, 2).plan(world.cost, batch=3)
    assert (world.final_error(res.actions) < 0.1).all()
    # moving the goal of rows 1 and 2 must not change row 0's answer
    world.goal[1:] += 0.7
    res2 = build(name, 2).plan(world.cost, batch=3)
    torch.testing.assert_close(res2.actions[0], res.actions[0], atol=1e-5, rtol=0)
    assert not torch.allclose(res2.actions[1:], res.actions[1:], atol=1e-3)


def test_cost_of_wrong_shape_or_nan_is_a_clear_error() -> None:
    planner = CEM(low=-1.0, high=1.0, horizon=H, action_dim=2, samples=50, elites=5)
    with pytest.raises(ValueError, match=r"\(B, S\) = \(3, \d+\).*got \(3,\)"):
        planner.plan(lambda a: a.sum(dim=(1, 2, 3)), batch=3)
    with pytest.raises(ValueError, match="NaN"):
        planner.plan(lambda a: a.sum(dim=(2, 3)) * float("nan"), batch=3)
    with pytest.raises(ValueError, match=r"init must be \(B, H, A\)"):
        planner.plan(lambda a: a.sum(dim=(2, 3)), torch.zeros(H, 2))


def test_gradient_planner_needs_differentiable_cost() -> None:
    planner = make_planner("gd", low=-1.0, high=1.0, horizon=H, action_dim=2)
    with pytest.raises(ValueError, match="differentiable"):
        planner.plan(lambda a: a.detach().sum(dim=(2, 3)), batch=1)


@pytest.mark.parametrize("name", ["cem", "icem", "mppi"])
def test_warm_start_beats_cold_start_at_a_small_budget(name: str) -> None:
    world = LinearWorld(4, batch=8, seed=11)
    solved = build(name, 4).plan(world.cost, batch=8).actions  # (8, H, 4)
    small = dict(samples=30, iterations=2, elites=5) if name != "mppi" else \
        dict(samples=30, iterations=2)
    cold = build(name, 4, **small).plan(world.cost, batch=8).cost
    g = torch.Generator().manual_seed(0)
    warm_init = solved + 0.05 * torch.randn(solved.shape, generator=g)
    spread = {"noise_std" if name == "mppi" else "init_std": 0.1}
    warm = build(name, 4, **spread, **small).plan(world.cost, warm_init).cost
    assert warm.mean() < 0.5 * cold.mean(), (warm.mean(), cold.mean())


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_answer_is_never_worse_than_the_warm_start(name: str) -> None:
    world = LinearWorld(4, batch=4, seed=13)
    good = build(name, 4).plan(world.cost, batch=4).actions  # (4, H, 4)
    tiny = dict(samples=4, iterations=1, elites=2) if name in ("cem", "icem", "cem_gd") else \
        dict(samples=4, iterations=1)
    if name == "cem_gd":
        tiny["gd_iterations"] = 1
    res = build(name, 4, **tiny).plan(world.cost, good)
    assert (res.cost <= world.cost(good[:, None])[:, 0] + 1e-6).all()


def test_unknown_planner_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown planner 'cme'.*cem, cem_gd, gd, icem, mppi"):
        make_planner("cme")


def test_cost_per_iter_of_cem_does_not_increase_much() -> None:
    world = LinearWorld(2, seed=2)
    res = build("cem", 2).plan(world.cost, batch=1)
    per_iter = res.info["cost_per_iter"][:, 0]  # (iterations,)
    assert per_iter.shape == (CONFIGS["cem"]["iterations"],)
    assert per_iter[-1] < 0.2 * per_iter[0]


def test_icem_population_shrinks_reuses_elites_and_includes_the_mean() -> None:
    world = LinearWorld(2, seed=1)
    seen: list[int] = []

    def cost(actions):
        seen.append(actions.shape[1])
        return world.cost(actions)

    planner = make_planner("icem", low=-1.0, high=1.0, horizon=H, action_dim=2, samples=200,
                           iterations=4, elites=10, shrink=2.0, keep_elites=0.3)
    planner.plan(cost, batch=1)
    # [initial guess], then per iteration: population 200 / 2^it (never below 2 * elites)
    # + kept elites (3 after the first iteration) + the mean (1), then the final mean
    assert seen == [1, 200 + 1, 100 + 3 + 1, 50 + 3 + 1, 25 + 3 + 1, 1]


@pytest.mark.parametrize("name", sorted(PLANNERS))
def test_dtype_follows_the_warm_start(name: str) -> None:
    world = LinearWorld(2, seed=6)
    world.M, world.z0, world.goal = world.M.double(), world.z0.double(), world.goal.double()
    tiny = {"samples": 8, "iterations": 2, **({"elites": 2} if name != "mppi" else {})}
    res = build(name, 2, **tiny).plan(world.cost, torch.zeros(1, H, 2, dtype=torch.float64))
    assert res.actions.dtype == torch.float64 and res.actions.shape == (1, H, 2)
