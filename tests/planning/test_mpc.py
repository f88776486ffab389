"""MPC: closed loop on the linear world, commitment of actions, shifted warm starts."""

from __future__ import annotations

import pytest
import torch

from worldjepa.planning import CEM, MPC, PlanResult, latent_cost

from test_linear_world import LinearWorld

H = 5


@pytest.mark.parametrize("replan_every", [1, 3])
def test_closed_loop_reaches_goal_in_every_env(replan_every: int) -> None:
    world = LinearWorld(2, batch=3, seed=4)
    world.goal = world.goal * 3  # farther than one horizon for some envs
    planner = CEM(low=-1.0, high=1.0, samples=200, iterations=12, elites=20, seed=0)
    mpc = MPC(planner, horizon=H, action_dim=2, low=-1.0, high=1.0,
              replan_every=replan_every, batch=3)
    z = world.z0.clone()  # (B, D)
    start_err = (z - world.goal).norm(dim=-1)
    for _ in range(15):
        def factory(z=z):
            def cost(actions):
                pred = z[:, None, None, :] + torch.cumsum(actions @ world.M.T, dim=2)
                return latent_cost(pred, world.goal)  # (B, S)
            return cost
        a = mpc.act(factory)  # (B, A)
        assert a.shape == (3, 2) and (a.abs() <= 1.0).all()
        z = z + a @ world.M.T
    err = (z - world.goal).norm(dim=-1)
    assert (err < 0.1).all(), (err, start_err)
    assert (start_err > 1.0).any()  # the test is not trivial


class RecordingPlanner:
    """Returns plan number k as the constant sequence ``a[h] = 10 * k + h``; records inits."""

    def __init__(self) -> None:
        self.inits: list[torch.Tensor] = []

    def plan(self, cost_fn, init):
        self.inits.append(init.clone())
        k = len(self.inits)
        B, Hh, A = init.shape
        acts = (10.0 * k + torch.arange(Hh, dtype=torch.float32))[None, :, None].expand(B, Hh, A)
        return PlanResult(actions=acts.clone(), cost=torch.zeros(B))


@pytest.mark.parametrize("pad", ["last", "zero"])
def test_commits_replan_every_actions_and_shifts_warm_start(pad: str) -> None:
    rec = RecordingPlanner()
    mpc = MPC(rec, horizon=4, action_dim=1, low=-100.0, high=100.0, replan_every=2,
              batch=2, pad=pad)
    calls = {"n": 0}

    def factory():
        calls["n"] += 1
        return lambda a: a.sum(dim=(2, 3))

    got = [mpc.act(factory)[0, 0].item() for _ in range(5)]
    assert got == [10.0, 11.0, 20.0, 21.0, 30.0]  # two actions per plan, one per call
    assert len(rec.inits) == 3 and calls["n"] == 3  # the factory runs only to replan
    assert torch.equal(rec.inits[0], torch.zeros(2, 4, 1))  # cold start: middle of bounds
    tail = 13.0 if pad == "last" else 0.0
    expected = torch.tensor([12.0, 13.0, tail, tail])[None, :, None].expand(2, 4, 1)
    assert torch.equal(rec.inits[1], expected)
    mpc.reset()
    mpc.act(factory)
    assert torch.equal(rec.inits[-1], torch.zeros(2, 4, 1))  # reset forgets the last plan


def test_without_warm_start_every_plan_starts_cold_and_bad_settings_fail() -> None:
    rec = RecordingPlanner()
    mpc = MPC(rec, horizon=3, action_dim=2, low=-1.0, high=1.0, warm_start=False)
    for _ in range(3):
        mpc.act(lambda a: a.sum(dim=(2, 3)))
    assert all(torch.equal(i, torch.zeros(1, 3, 2)) for i in rec.inits)
    with pytest.raises(ValueError, match="replan_every"):
        MPC(rec, horizon=3, action_dim=2, replan_every=4)
