"""On TwoRoom, the agent with a memory reaches a goal in the other room that flat MPC cannot.

No learning, so the test is about the reasoning, not a model's quality: the "world model" reads
the agent's position off the frame (its embedding) and imagines with the env's own physics;
the memory is built from random-walk recordings embedded the same way. Flat MPC with a
horizon of 5 macro-steps greedily presses against the wall; the route leads through the door.
"""

import numpy as np
import pytest
import torch
from torch import nn

from worldjepa.agent import Agent
from worldjepa.envs.adapter import make_env
from worldjepa.memory import MemoryMap, build_map, calibrate

K = 5  # frame-skip


class PositionModel(nn.Module):
    """A perfect world model of TwoRoom: embedding = (x, y) / 64 from the red disk's pixels;
    rollout = the env's physics (``advance``) from the last embedded position."""

    frameskip, history, action_dim, proprio, latent_dim, visual_dim = K, 1, 2, "", 2, 2

    def __init__(self, env):
        super().__init__()
        self.env = env.unwrapped
        self.dummy = nn.Parameter(torch.zeros(1))  # the Agent reads the device off a parameter
        self.encoder, self.projector = nn.Identity(), nn.Identity()

    def proprio_of(self, extras):
        return None

    def encode(self, frames, proprio=None):
        f = np.asarray(frames, np.float32)  # (..., S, S, 3) uint8
        red = np.clip(f[..., 0] - f[..., 1], 0, None)  # the agent's disk (floor and walls are grey)
        s = f.shape[-2]
        ys, xs = np.mgrid[0:s, 0:s] + 0.5
        w = red.sum((-1, -2)).clip(min=1e-6)
        pos = np.stack([(red * xs).sum((-1, -2)) / w, (red * ys).sum((-1, -2)) / w], -1) * (64.0 / s)
        return torch.as_tensor(pos / 64.0, dtype=torch.float32)

    def rollout(self, z_hist, a_hist, actions):
        b, s, h, _ = actions.shape
        out = np.zeros((b, s, h, 2), np.float32)
        acts = actions.detach().cpu().numpy().reshape(b, s, h, K, 2)
        for i in range(b):
            for j in range(s):
                state = z_hist[i, -1].detach().cpu().numpy().astype(np.float64) * 64.0
                for t in range(h):
                    for a in acts[i, j, t]:
                        state = self.env.advance(state, a)
                    out[i, j, t] = state / 64.0
        return torch.as_tensor(out)


@pytest.fixture(scope="module")
def tworoom_map():
    """A map of TwoRoom from 80 smooth random walks of 100 steps, embedded as positions."""
    from worldjepa.configs import CollectConfig
    from worldjepa.data.collect import record_episode

    env = make_env("worldjepa/TwoRoom-v0", 32)
    cfg = CollectConfig(env="worldjepa/TwoRoom-v0", steps=100, size=32, policy="smooth")
    z, ep, st = [], [], []
    for e in range(80):
        rec = record_episode(env, cfg, e)
        z.append(rec["extras"]["state"][:, :2] / 64.0)
        ep.append(np.full(len(rec["frames"]), e))
        st.append(np.arange(len(rec["frames"])))
    z, ep, st = np.concatenate(z).astype(np.float32), np.concatenate(ep), np.concatenate(st)
    r = calibrate(z, ep, st, gap=3)
    marks, edges, weights, _ = build_map(z, ep, st, radius=r, max_gap=10)
    return MemoryMap(z[marks], edges, weights, radius=r)


def _episode(agent, env, start, goal, budget=200):
    frame, _ = env.reset(state=start)
    goal_frame = env.unwrapped.render_state(goal)
    agent.reset(goal_frame)
    for t in range(budget):
        frame, extras, _ = env.step(agent.act(frame))
        if env.unwrapped.success(extras["state"], goal):
            return t + 1
    return None


def test_the_memory_agent_reaches_the_other_room_where_flat_mpc_is_stuck(tworoom_map):
    env = make_env("worldjepa/TwoRoom-v0", 32)
    model = PositionModel(env)
    meta = {"action_space": env.action_spec.to_dict(), "frame_size": 32, "env_id": "worldjepa/TwoRoom-v0"}
    plan = dict(samples=48, iterations=3, elites=6, seed=0)
    start, goal = np.array([22.0, 8.0]), np.array([42.0, 8.0])  # the door is at y = 26..38, far below
    flat = Agent(model, meta, **plan)
    assert _episode(flat, env, start, goal) is None  # greedy: pressed against the wall
    routed = Agent(model, meta, memory=tworoom_map, route_lookahead=10.0, **plan)
    steps = _episode(routed, env, start, goal)
    assert steps is not None and steps < 200, routed.episode_info()
    info = routed.episode_info()["memory"]
    assert info["routed"] and not info["fallback"] and info["reached"] > 3
    route = tworoom_map.z[routed.router.route] * 64
    cross = [i for i in range(len(route) - 1) if route[i, 0] < 32 <= route[i + 1, 0]]
    assert cross and all(20 < route[i, 1] < 44 and 20 < route[i + 1, 1] < 44 for i in cross)  # at the door (y 26-38)


def test_memory_refuses_an_ensemble_of_two_latents_and_an_unreachable_goal_falls_back(tworoom_map):
    env = make_env("worldjepa/TwoRoom-v0", 32)
    model, other = PositionModel(env), PositionModel(env)
    other.projector = nn.Linear(2, 2)  # another latent
    meta = {"action_space": env.action_spec.to_dict(), "frame_size": 32, "env_id": "worldjepa/TwoRoom-v0"}
    from worldjepa.errors import WorldJepaError

    with pytest.raises(WorldJepaError, match="ensemble uses it only if its members share it"):
        Agent([model, other], meta, memory=tworoom_map)
    cut = MemoryMap(tworoom_map.z, tworoom_map.edges[:0], tworoom_map.weights[:0], tworoom_map.radius)  # no edges
    agent = Agent(model, meta, memory=cut, samples=16, iterations=2, elites=4)
    frame, _ = env.reset(state=np.array([10.0, 10.0]))
    agent.reset(env.unwrapped.render_state(np.array([50.0, 50.0])))
    agent.act(frame)
    assert agent.episode_info()["memory"]["fallback"]  # said, and planned flat toward the goal itself
    torch.testing.assert_close(agent.goal, agent.final_goal)


def test_shortcuts_link_what_the_world_model_reaches_and_not_through_a_wall():
    """With a perfect world model: two places in one room 8 units apart are linked both ways (one
    macro-step); a place beyond the wall, 16 units away but 46 by the door, is not."""
    from worldjepa.memory.shortcuts import judge_shortcuts

    env = make_env("worldjepa/TwoRoom-v0", 32)
    model = PositionModel(env)
    marks = np.array([[24.0, 4.0], [24.0, 12.0], [40.0, 4.0]], np.float32) / 64  # A, C (same room), B (beyond)
    spec = env.action_spec
    kw = dict(neighbours=2, max_dist=6.0, horizon=3, samples=48, iterations=4, seed=0)
    edges, weights, n = judge_shortcuts(model, marks, np.zeros((0, 2)), 3 / 64, spec.low, spec.high, **kw)
    assert n == 6  # every ordered pair is a candidate
    assert {tuple(e) for e in edges.tolist()} == {(0, 1), (1, 0)}
    np.testing.assert_array_equal(weights, [K, K])  # reached within the first macro-step
    edges, _, n = judge_shortcuts(model, marks, np.array([[0, 1]]), 3 / 64, spec.low, spec.high, **kw)
    assert n == 5 and {tuple(e) for e in edges.tolist()} == {(1, 0)}  # an existing edge is never proposed again
