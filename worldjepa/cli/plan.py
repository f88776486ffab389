"""``worldjepa plan``: run one episode toward a goal frame with a trained agent, and film it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import add_config_args, config_from_args

if TYPE_CHECKING:
    import numpy as np

EXAMPLE = """example:
  worldjepa plan --run runs/tworoom --data data/tworoom.h5 --episode 0 --start 10 --goal-offset 25 --gif plan.gif
"""


def register(sub: Any) -> None:
    from ..configs import PlanConfig

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
    import numpy as np
    import torch

    rows = ds.rows(ds.episode_ids("train"))
    rows = np.unique(rows[np.linspace(0, len(rows) - 1, min(n, len(rows))).astype(int)])
    frames = ds.read_frames(rows)  # (N, H, W, 3), sorted rows: one HDF5 read
    extras = {model.proprio_key: ds.read_extra(model.proprio_key, rows)} if model.proprio else {}
    with torch.no_grad():
        z = torch.cat([model.encode(frames[i:i + 256], model.proprio_of({k: v[i:i + 256] for k, v in extras.items()}))
                       for i in range(0, len(frames), 256)])  # (N, D)
    return z, frames


def run(args: argparse.Namespace) -> int:
    import torch

    from ..agent import Agent
    from ..checkpoint import check_compatible, read_meta
    from ..data.dataset import Dataset
    from ..envs.adapter import make_env
    from ..errors import DatasetError, WorldJepaError
    from ..eval.protocol import restore_start, run_episode

    cfg = config_from_args(args)
    if not cfg.run or not cfg.data:
        raise WorldJepaError("pass --run RUN_DIR and --data FILE")
    from ..paths import check_outputs

    check_outputs({"--gif": (cfg.gif, ("gif", "mp4"))},
                  {"--run": cfg.run, "--data": cfg.data, "--memory": cfg.agent.memory})
    if cfg.gif:
        from ..eval.media import check_video_name

        check_video_name(cfg.gif)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    meta = read_meta(cfg.run)
    ds = Dataset(cfg.data)
    ds.check()  # the start and the goal come from it
    check_compatible(meta, ds.env_id, ds.frame_size, ds.action_dim, where=f"checkpoint {cfg.run}")
    test = ds.episode_ids("test")
    if not 0 <= cfg.episode < len(test):
        raise DatasetError(f"--episode {cfg.episode}: the test split of {cfg.data} has {len(test)} episodes")
    ep = ds.episode(int(test[cfg.episode]))
    goal_t = cfg.start + cfg.goal_offset
    if goal_t >= len(ep["frames"]):
        raise DatasetError(f"start {cfg.start} + goal offset {cfg.goal_offset} is past the episode's "
                           f"{len(ep['frames'])} frames")
    agent = Agent.load(cfg.run, env_id=ds.env_id, config=cfg.agent)
    env = make_env(ds.env_id, ds.frame_size, None, **ds.env_kwargs)  # the recordings' env (its layout, ...)
    has_state = "state" in ep
    obs, extras = restore_start(env, ep, cfg.start, restore=has_state)  # no state: replay the recorded actions
    goal, goal_state = ep["frames"][goal_t], ep["state"][goal_t] if has_state else None
    u = env.unwrapped
    can_judge = has_state and hasattr(u, "success") and hasattr(u, "distance")
    judge = (lambda s, g: (bool(u.success(s, g)), float(u.distance(s, g)))) if can_judge else None
    bank = _frame_bank(agent.model, ds, cfg.nn_frames) if cfg.gif else None
    agent.reset(goal, goal_extras={name: ep[name][goal_t] for name in ds.extras if name in ep})
    panels: list[tuple[np.ndarray, np.ndarray, np.ndarray | None, str]] = []
    last: dict[str, Any] = {"obs": obs, "extras": extras}

    def on_step(step: int, before: np.ndarray, action: Any, after: np.ndarray, ex: dict[str, Any]) -> None:
        if bank is not None:
            nearest = int(torch.cdist(agent.imagined[:1], bank[0]).argmin())  # next model step's embedding
            panels.append((before, bank[1][nearest], *_subgoal_panel(agent, goal)))
        last.update(obs=after, extras=ex)

    record = run_episode(env, agent, obs, extras, cfg.budget, judge, goal_state, on_step)
    obs, extras, steps = last["obs"], last["extras"], record["steps"]
    with torch.no_grad():
        latent = float((agent.encode(obs, extras=extras if agent.model.proprio else None) - agent.final_goal[0])
                       .square().mean())
    result = {"env_id": meta["env_id"], "episode": int(test[cfg.episode]), "start": cfg.start,
              "goal_offset": cfg.goal_offset, "steps": steps, "budget": cfg.budget,
              "success": record["success"], "latent_distance": latent, "distance": record["final_distance"],
              **agent.episode_info()}
    if cfg.gif and panels:
        from ..eval.media import save_gif, side_by_side

        scale = max(1, 128 // int(meta["frame_size"]))
        routed = agent.router is not None
        head = f"{Path(cfg.run).name} @{meta.get('step', '?')}"
        outcome = {True: f"SUCCESS in {steps} steps", False: "failure", None: f"{steps} steps"}[result["success"]]
        frames = [side_by_side([o, im, sub, goal] if routed else [o, im, goal],
                               ["observation", "imagined", label, "goal"] if routed else
                               ["observation", "imagined", "goal"], scale=scale,
                               title=f"{head} | step {t + 1}/{cfg.budget}")
                  for t, (o, im, sub, label) in enumerate(panels)]
        frames += [side_by_side([obs, obs, goal, goal] if routed else [obs, obs, goal],
                                ["observation", "final", "goal", "goal"] if routed else
                                ["observation", "final", "goal"], scale=scale, title=f"{head} | {outcome}")] * 4
        result["gif"] = str(save_gif(cfg.gif, frames, fps=8))
    env.close()
    ds.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    verdict = {True: "success", False: "failure", None: "no success criterion (env has no success())"}[result["success"]]
    print(f"{meta['env_id']}: test episode {result['episode']}, start {cfg.start}, goal +{cfg.goal_offset} steps")
    print(f"  {verdict} after {steps} of {cfg.budget} steps; final distance "
          f"{'n/a' if result['distance'] is None else format(result['distance'], '.4g')}; latent MSE to goal {latent:.4f}")
    if "gif" in result:
        print(f"  wrote {result['gif']}")
    return 0


def _subgoal_panel(agent: Any, goal: np.ndarray) -> tuple[np.ndarray, str]:
    """With a memory: the current subgoal's remembered frame (enlarged to the frame size) and its
    place on the route, "subgoal 3/12" (a subgoal model's: the remembered place nearest to it); the
    goal itself on the last leg or without a route."""
    import numpy as np

    r = agent.router
    if r is not None and r.guide is not None and r.map.thumbs is not None:  # the subgoal model's, as recalled
        thumb, label = r.map.thumbs[r.map.localize(r.guide)[0]], "learned subgoal (nearest place)"
    elif r is None or not r.active or r.target >= len(r.route) - 1 or r.map.thumbs is None:
        return goal, "goal" if r is None else f"last leg ({r.pos}/{max(1, len(r.route) - 1)})"
    else:
        thumb, label = r.map.thumbs[r.route[r.target]], f"subgoal {r.target}/{len(r.route) - 1}"  # (h, w, 3)
    rep = max(1, goal.shape[0] // thumb.shape[0])
    big = np.repeat(np.repeat(thumb, rep, 0), rep, 1)[:goal.shape[0], :goal.shape[1]]
    frame = np.zeros_like(goal)
    frame[:big.shape[0], :big.shape[1]] = big
    return frame, label
