"""What would the agent reach with a perfect predictor? (the ceiling of the cost and the planner)

    python benchmarks/diag_planner_ceiling.py --run runs/pusht --data pusht.h5 --episodes 20 \
        --agent "samples=64 iterations=4 elites=6"

Runs the held-out protocol of `worldjepa eval` (same pairs, same success test) with the run's
agent (same planner, horizon, replanning, warm start and latent cost), except that every
candidate action sequence is scored on what the *true* environment does: it is played in a
copy of the env from the current state, the frames at each model step are encoded by the run's
encoder, and the agent's latent cost is taken on those embeddings. What this reaches is the
most any predictor could give this encoder, cost and planner; the gap to the run's own `worldjepa
eval` score is the predictor's. `--cost state` scores candidates by the env's own error to the
goal state instead (``max(distance / threshold, angle / angle threshold)``), the ceiling of the
planner alone.

Slow by design (every candidate is simulated): scale the planner down with `--agent`. With a
memory (`--agent "memory=mem.db route_learn=false ..."`) each leg toward a subgoal is scored
so: the ceiling of the memory's guidance under a perfect predictor (`--goal-offset 75 --budget
150` for Push-T's far goals).
Built-in envs only (it restores the env's state for every candidate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from diag_cost_ranking import true_error  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a `worldjepa train` run: its encoder, cost and agent settings")
    ap.add_argument("--data", required=True, help="the dataset whose test split gives the pairs")
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="seed of the pair draw (as `worldjepa eval --seed`)")
    ap.add_argument("--goal-offset", type=int, default=25, help="the goal this many env steps ahead (as eval's)")
    ap.add_argument("--budget", type=int, default=50, help="env steps allowed per episode (as eval's)")
    ap.add_argument("--planner", default="cem")
    ap.add_argument("--agent", default="samples=64 iterations=4 elites=6",
                    help="Agent options as in `worldjepa eval --agent` (default: a small CEM, since every "
                         "candidate is simulated)")
    ap.add_argument("--cost", choices=("latent", "state"), default="latent",
                    help="latent: the agent's cost on the true frames' embeddings; state: the env's own error")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    import worldjepa.envs  # noqa: F401  (registers the built-in envs)
    from worldjepa.agent import Agent
    from worldjepa.config import parse_agent_options
    from worldjepa.configs import EvalConfig
    from worldjepa.envs.adapter import make_env
    from worldjepa.eval.protocol import run_protocol
    from worldjepa.planning import LatentCost
    from worldjepa.world_model import load_world_model

    if args.planner in ("gd", "cem_gd"):
        raise SystemExit(f"--planner {args.planner} differentiates through the predictor; the simulator is not "
                         "differentiable: use cem, icem or mppi")
    torch.set_num_threads(args.threads)
    model, meta = load_world_model(args.run)
    sim = make_env(meta["env_id"], int(meta["frame_size"]))
    if not sim.builtin:
        raise SystemExit(f"{meta['env_id']}: the ceiling needs an env whose state can be restored (built-in envs)")

    class Simulator:
        """The true env as :class:`~worldjepa.protocols.Dynamics`: candidates ``(1, S, H, k*A)`` are
        played from the current true state; their frames at each model step are encoded."""

        state: np.ndarray | None = None

        def outcomes(self, acts: torch.Tensor) -> tuple[list[np.ndarray], list[np.ndarray]]:
            frames, states = [], []
            for seq in acts[0].cpu().numpy():  # (H, k*A)
                sim.reset(state=self.state)
                for macro in seq:
                    for a in macro.reshape(model.frameskip, -1):
                        frame, extras, _ = sim.step(a)
                    frames.append(frame)
                    states.append(np.asarray(extras["state"]))
            return frames, states

        def rollout(self, z_hist: torch.Tensor, a_hist: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
            frames, states = self.outcomes(acts)
            z = model.encode(np.stack(frames), model.proprio_of({"state": np.stack(states)}))  # (S*H, D)
            return z.reshape(1, acts.shape[1], acts.shape[2], -1)

    simulator = Simulator()

    class Ceiling:
        """The run's agent (same planner, horizon, replanning, warm start, cost weights) with the
        true env in place of the predictor; a Policy for the protocol."""

        def __init__(self) -> None:
            self.agent = Agent(model, meta, args.planner, cost=self.cost, **parse_agent_options(args.agent))

        def cost(self, agent: Agent):
            if args.cost == "state":
                def state_cost(acts: torch.Tensor) -> torch.Tensor:
                    _, states = simulator.outcomes(acts)
                    err = np.array([true_error(sim.unwrapped, s, self.goal_state) for s in states])
                    err = err.reshape(acts.shape[1], acts.shape[2])  # (S, H)
                    return torch.as_tensor(err[:, -1] if agent.config.reduce == "final" else err.sum(1))[None].float()

                return state_cost
            z, a = agent.history.context()
            return LatentCost(simulator, agent.goal, z, a, metric=agent.config.metric, reduce=agent.config.reduce,
                              path_weights=agent.path_weights, scale=agent.cost_scale)  # the agent's own weights

        def reset(self, goal_obs: np.ndarray, **info) -> None:
            self.goal_state = np.asarray(info["goal_state"])
            self.agent.reset(goal_obs, **info)

        def act(self, obs: np.ndarray, **info):
            simulator.state = np.asarray(info["state"])
            return self.agent.act(obs, **info)

    cfg = EvalConfig(data=args.data, policy=f"{args.run} (true env as predictor, {args.cost} cost)",
                     agent=args.agent, episodes=args.episodes, seed=args.seed, goal_offset=args.goal_offset,
                     budget=args.budget, progress=False)
    with torch.no_grad():
        result = run_protocol(cfg, Ceiling())
    s, p = result["summary"], result["protocol"]
    print(f"{args.run}: true env as the predictor, {args.cost} cost, {args.planner} {args.agent!r}: "
          f"{100 * s['success_rate']:.0f}% [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}] over "
          f"{s['episodes']} pairs (goal +{p['goal_offset']} steps, budget {p['budget']}), mean final distance "
          f"{s['mean_final_distance']:.1f} ({s['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
