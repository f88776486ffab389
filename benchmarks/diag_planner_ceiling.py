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

Slow by design (every candidate is simulated): scale the planner down with `--agent`.
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
    from worldjepa.agent import Agent, load_checkpoint
    from worldjepa.envs.adapter import make_env
    from worldjepa.eval.protocol import EvalConfig, agent_options, run_protocol
    from worldjepa.planning import make_latent_cost

    if args.planner in ("gd", "cem_gd"):
        raise SystemExit(f"--planner {args.planner} differentiates through the predictor; the simulator is not "
                         "differentiable: use cem, icem or mppi")
    torch.set_num_threads(args.threads)
    model, meta = load_checkpoint(args.run)
    sim = make_env(meta["env_id"], int(meta["frame_size"]))
    if not sim.builtin:
        raise SystemExit(f"{meta['env_id']}: the ceiling needs an env whose state can be restored (built-in envs)")

    class SimulatedAgent(Agent):
        """The run's agent with the true env in place of the predictor."""

        state: np.ndarray | None = None

        def act(self, obs, **info):  # type: ignore[override]
            self.state = np.asarray(info["state"])
            return super().act(obs, **info)

        def _outcomes(self, acts: torch.Tensor) -> tuple[list[np.ndarray], list[np.ndarray]]:
            """Frames and states at each model step of every candidate ``(1, S, H, k*A)``."""
            frames, states = [], []
            for seq in acts[0].cpu().numpy():  # (H, k*A)
                sim.reset(state=self.state)
                for macro in seq:
                    for a in macro.reshape(self.k, -1):
                        frame, extras, _ = sim.step(a)
                    frames.append(frame)
                    states.append(np.asarray(extras["state"]))
            return frames, states

        def _cost_fn(self):  # type: ignore[override]
            if args.cost == "state":
                goal_state = self.goal_state

                def cost(acts: torch.Tensor) -> torch.Tensor:
                    _, states = self._outcomes(acts)
                    err = np.array([true_error(sim.unwrapped, s, goal_state) for s in states])
                    err = err.reshape(acts.shape[1], acts.shape[2])  # (S, H)
                    return torch.as_tensor(err[:, -1] if self.reduce == "final" else err.sum(1))[None].float()

                return cost

            def rollout(acts: torch.Tensor) -> torch.Tensor:
                frames, states = self._outcomes(acts)
                p = self.model.proprio_of({"state": np.stack(states)})
                z = self.model.encode(np.stack(frames), p)  # (S*H, D)
                return z.reshape(1, acts.shape[1], acts.shape[2], -1) * scale

            scale = 1.0 if self.cost_scale is None else self.cost_scale  # the agent's proprio / keypoint weights
            return make_latent_cost(rollout, self.goal * scale, metric=self.metric, reduce=self.reduce)

        def reset(self, goal_obs, **info):  # type: ignore[override]
            self.goal_state = np.asarray(info["goal_state"])
            super().reset(goal_obs, **info)

    agent = SimulatedAgent(model, meta, args.planner, **agent_options(args.agent))
    cfg = EvalConfig(data=args.data, policy=f"{args.run} (true env as predictor, {args.cost} cost)",
                     planner=args.planner, agent=args.agent, episodes=args.episodes, seed=args.seed)
    with torch.no_grad():
        result = run_protocol(cfg, agent)
    s = result["summary"]
    print(f"{args.run}: true env as the predictor, {args.cost} cost, {args.planner} {args.agent!r}: "
          f"{100 * s['success_rate']:.0f}% [{100 * s['ci95'][0]:.1f}, {100 * s['ci95'][1]:.1f}] over "
          f"{s['episodes']} pairs, mean final distance {s['mean_final_distance']:.1f} ({s['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
