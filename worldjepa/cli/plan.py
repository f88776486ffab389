"""``worldjepa plan``: run one episode toward a goal frame with a trained agent, and film it."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import opt
from .common import add_config_args, config_from_args

EXAMPLE = """example:
  worldjepa plan --run runs/tworoom --data data/tworoom.h5 --episode 0 --start 10 --goal-offset 25 --gif plan.gif
"""


@dataclass(frozen=True)
class PlanConfig:
    """One planned episode from a held-out (test split) episode's state toward a later frame of it."""

    run: str = opt("", "run directory or checkpoint file (from `worldjepa train`)")
    data: str = opt("", "dataset file; start and goal come from its test split")
    episode: int = opt(0, "which test-split episode (0 = the first)")
    start: int = opt(0, "start at this step of the episode")
    goal_offset: int = opt(25, "the goal is the episode's frame goal_offset steps after the start")
    budget: int = opt(50, "env steps allowed")
    planner: str = opt("cem", "cem | icem | mppi | gd | cem_gd")
    samples: int = opt(300, "planner samples per iteration")
    iterations: int = opt(30, "planner iterations per replan")
    elites: int = opt(30, "elites kept per iteration (sampling planners)")
    horizon: int = opt(5, "planning horizon in model steps (macro-actions)")
    replan_every: int = opt(1, "macro-steps executed per plan")
    seed: int = opt(0, "planner seed")
    agent: str = opt("", "more Agent options, space- or comma-separated key=value, e.g. 'final_weight=5 "
                         "proprio_weight=0 reduce=final' (see worldjepa.Agent; they win over the flags above)")
    gif: str = opt("", "write observation | imagined | goal frames to this GIF")
    nn_frames: int = opt(2000, "dataset frames encoded once to show the imagined embedding's nearest frame")
    threads: int = opt(0, "torch CPU threads (0 = torch's default)")


def register(sub: Any) -> None:
    p = sub.add_parser("plan", help="plan one episode toward a goal frame and write a GIF",
                       description="Run the checkpoint's agent (planner + MPC) in the checkpoint's env from a "
                                   "held-out episode's state toward that episode's frame GOAL_OFFSET steps later; "
                                   "print steps, success and final distance; optionally write a GIF of what it saw, "
                                   "what it imagined (nearest dataset frame of the predicted embedding) and the goal.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE)
    add_config_args(p, PlanConfig)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def _frame_bank(model: Any, ds: Any, n: int) -> tuple[Any, np.ndarray]:
    """Embeddings (N, D) and frames (N, H, W, 3) of up to ``n`` evenly spaced train-split frames."""
    import torch

    ids = ds.episode_ids("train")
    rows = np.concatenate([np.arange(ds.starts[e], ds.starts[e] + ds.lengths[e]) for e in ids])
    rows = np.unique(rows[np.linspace(0, len(rows) - 1, min(n, len(rows))).astype(int)])
    frames = ds.f["frames"][rows]  # (N, H, W, 3), sorted rows: one HDF5 read
    extras = {model.proprio_key: ds.f["extras"][model.proprio_key][rows]} if model.proprio else {}
    with torch.no_grad():
        z = torch.cat([model.encode(frames[i:i + 256], model.proprio_of({k: v[i:i + 256] for k, v in extras.items()}))
                       for i in range(0, len(frames), 256)])  # (N, D)
    return z, frames


def run(args: argparse.Namespace) -> int:
    import torch

    from ..agent import Agent
    from ..data.dataset import Dataset
    from ..envs.adapter import make_env
    from ..errors import DatasetError, WorldJepaError
    from ..eval.protocol import agent_options
    from ..training.checkpoint import check_compatible, read_meta

    cfg = config_from_args(args)
    if not cfg.run or not cfg.data:
        raise WorldJepaError("pass --run RUN_DIR and --data FILE")
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    meta = read_meta(cfg.run)
    ds = Dataset(cfg.data)
    check_compatible(meta, ds.env_id, ds.frame_size, ds.action_dim, where=f"checkpoint {cfg.run}")
    test = ds.episode_ids("test")
    if not 0 <= cfg.episode < len(test):
        raise DatasetError(f"--episode {cfg.episode}: the test split of {cfg.data} has {len(test)} episodes")
    ep = ds.episode(int(test[cfg.episode]))
    goal_t = cfg.start + cfg.goal_offset
    if cfg.start < 0 or goal_t >= len(ep["frames"]):
        raise DatasetError(f"start {cfg.start} + goal offset {cfg.goal_offset} is past the episode's "
                           f"{len(ep['frames'])} frames")
    options = dict(horizon=cfg.horizon, replan_every=cfg.replan_every, seed=cfg.seed, samples=cfg.samples,
                   iterations=cfg.iterations, elites=min(cfg.elites, cfg.samples))
    options.update(agent_options(cfg.agent))
    agent = Agent.load(cfg.run, cfg.planner, env_id=ds.env_id, **options)
    env = make_env(meta["env_id"], int(meta["frame_size"]))
    has_state = "state" in ep
    if has_state:
        obs, extras = env.reset(seed=int(ep["seed"]), state=ep["state"][cfg.start])
    else:  # no restorable state: replay the recorded actions from the episode's seed
        obs, extras = env.reset(seed=int(ep["seed"]))
        for a in ep["actions"][:cfg.start]:
            obs, extras, _ = env.step(a)
    goal, goal_state = ep["frames"][goal_t], ep["state"][goal_t] if has_state else None
    u = env.unwrapped
    can_judge = has_state and hasattr(u, "success") and hasattr(u, "distance")
    bank = _frame_bank(agent.model, ds, cfg.nn_frames) if cfg.gif else None
    agent.reset(goal, goal_extras={name: ep[name][goal_t] for name in ds.extras if name in ep})
    panels, success, steps = [], False, 0
    for steps in range(1, cfg.budget + 1):
        action = agent.act(obs, extras=extras)
        if bank is not None:
            nearest = int(torch.cdist(agent.imagined[:1], bank[0]).argmin())  # next model step's embedding
            panels.append((obs, bank[1][nearest]))
        obs, extras, done = env.step(agent.spec.encode(action))
        if can_judge and bool(u.success(extras["state"], goal_state)):
            success = True
            break
        if done:
            break
    with torch.no_grad():
        latent = float((agent.encode(obs, extras=extras if agent.model.proprio else None) - agent.goal[0])
                       .square().mean())
    result = {"env_id": meta["env_id"], "episode": int(test[cfg.episode]), "start": cfg.start,
              "goal_offset": cfg.goal_offset, "steps": steps, "budget": cfg.budget,
              "success": success if can_judge else None, "latent_distance": latent,
              "distance": float(u.distance(extras["state"], goal_state)) if can_judge else None}
    if cfg.gif and panels:
        from ..eval.media import save_gif, side_by_side

        scale = max(1, 128 // int(meta["frame_size"]))
        frames = [side_by_side([o, im, goal], ["observation", "imagined", "goal"], scale=scale) for o, im in panels]
        frames.append(side_by_side([obs, obs, goal], ["observation", "final", "goal"], scale=scale))
        result["gif"] = str(save_gif(cfg.gif, frames, fps=8))
    env.close()
    ds.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    verdict = {True: "success", False: "failure", None: "no success criterion (env has no success())"}[result["success"]]
    print(f"{meta['env_id']}: test episode {result['episode']}, start {cfg.start}, goal +{cfg.goal_offset} steps")
    print(f"  {verdict} after {steps} of {cfg.budget} steps; final distance "
          f"{result['distance'] if result['distance'] is not None else 'n/a'}; latent MSE to goal {latent:.4f}")
    if "gif" in result:
        print(f"  wrote {result['gif']}")
    return 0
