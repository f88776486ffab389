"""Can Push-T's dynamics be learned from this data at all? (perfect perception, true cost)

    python benchmarks/diag_state_model.py --data pusht.h5 --steps 4000 --episodes 30

The world model has two jobs: see the scene and predict what the actions do to it. This
check removes the first: an MLP learns Push-T's dynamics from the dataset's recorded *true
states* (pusher x, y; block x, y, cos and sin of its angle; block velocities), one model step
of `--frameskip` actions at a time, as a residual, trained on open-loop rollouts of 3 model
steps (`--train-rollout`). It reports the open-loop error of the block's position after each
of the `--horizon` model steps along the recorded actions of test-split episodes (against
"the block stays where it is"), then runs the held-out protocol of `worldjepa eval` (same pairs, same success test) with CEM on
this model and a cost on the *true* goal state (block position error / 20 + angle error /
(pi/9), summed along the path): no encoder, no latent cost. What it reaches bounds what a
pixel world model trained on the same data the same way can expect.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def features(s: np.ndarray) -> np.ndarray:
    """Push-T states ``(..., 8)`` -> normalised features ``(..., 9)``."""
    return np.concatenate([s[..., :4] / 256 - 1, np.cos(s[..., 4:5]), np.sin(s[..., 4:5]),
                           s[..., 5:7] / 200, s[..., 7:8] / 5], -1).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a worldjepa/PushT-v0 dataset (records 'state')")
    ap.add_argument("--steps", type=int, default=4000, help="training steps (batches of 128 windows)")
    ap.add_argument("--episodes", type=int, default=30, help="protocol pairs to plan on (0 = skip planning)")
    ap.add_argument("--frameskip", type=int, default=5)
    ap.add_argument("--horizon", type=int, default=5, help="model steps per plan")
    ap.add_argument("--train-rollout", type=int, default=3, help="model steps of the open-loop training rollouts")
    ap.add_argument("--replan-every", type=int, default=5, help="env steps executed per plan")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--iterations", type=int, default=30, help="CEM iterations (elites: a tenth of the samples)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the pair draw (as `worldjepa eval --seed`)")
    args = ap.parse_args()

    import torch
    from torch import nn

    import worldjepa.envs  # noqa: F401  (registers the built-in envs)
    from worldjepa.data.dataset import Dataset
    from worldjepa.eval.protocol import EvalConfig, run_protocol

    torch.set_num_threads(1)
    torch.manual_seed(0)
    k, H = args.frameskip, args.horizon
    with Dataset(args.data) as ds:
        if ds.env_id != "worldjepa/PushT-v0" or "state" not in ds.extras:
            raise SystemExit(f"{args.data}: this check needs a worldjepa/PushT-v0 dataset with states, got {ds.env_id}")
        train = [ds.episode(int(e)) for e in ds.episode_ids("train")]
        test = [ds.episode(int(e)) for e in ds.episode_ids("test")]
    net = nn.Sequential(nn.Linear(9 + 2 * k, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(),
                        nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 9))
    rng = np.random.default_rng(0)

    def windows(eps: list, n: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
        """States at ``steps + 1`` model-step boundaries ``(n, steps + 1, 9)``, macro-actions ``(n, steps, 2k)``."""
        s, a = [], []
        for _ in range(n):
            ep = eps[int(rng.integers(len(eps)))]
            t = int(rng.integers(0, len(ep["actions"]) - steps * k + 1))
            s.append(features(ep["state"][t:t + steps * k + 1:k]))
            a.append(ep["actions"][t:t + steps * k].reshape(steps, 2 * k))
        return torch.as_tensor(np.stack(s)), torch.as_tensor(np.stack(a)).float()

    def rollout(s: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """``(N, 9)``, ``(N, T, 2k)`` -> ``(N, T, 9)``."""
        out = []
        for h in range(acts.shape[1]):
            s = s + net(torch.cat([s, acts[:, h]], -1))
            out.append(s)
        return torch.stack(out, 1)

    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    t0 = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 0.5 * (1 + np.cos(np.pi * step / args.steps))
        s, a = windows(train, 128, args.train_rollout)
        loss = (rollout(s[:, 0], a) - s[:, 1:]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"{args.data}: {len(train)} train episodes, {args.steps} steps in {time.time() - t0:.0f} s")
    net.eval().requires_grad_(False)
    s, a = windows(test, 2000, H)
    pred = rollout(s[:, 0], a)
    print("\n| model steps | block position error, learned model (units) | block stays (units) |\n|---|---|---|")
    for h in range(H):
        err = (pred[:, h, 2:4] - s[:, h + 1, 2:4]).norm(dim=-1) * 256
        stay = (s[:, 0, 2:4] - s[:, h + 1, 2:4]).norm(dim=-1) * 256
        print(f"| {h + 1} | {err.mean():.1f} | {stay.mean():.1f} |")
    if args.episodes < 1:
        return

    class StatePlanner:
        """A policy: CEM over ``H`` macro-steps on the learned model, cost on the true goal state."""

        def reset(self, goal_frame, goal_state=None, **_):
            self.goal = np.asarray(goal_state, np.float64)
            self.mean = torch.zeros(H * k, 2)
            self.queue: list[np.ndarray] = []
            self.gen = torch.Generator().manual_seed(0)

        def cost(self, pred: torch.Tensor) -> torch.Tensor:
            g = self.goal
            pos = ((pred[..., 2:4] - torch.tensor(g[2:4] / 256 - 1).float()) * 256).norm(dim=-1) / 20
            ang = torch.remainder(torch.atan2(pred[..., 5], pred[..., 4]) - float(g[4]) + np.pi, 2 * np.pi) - np.pi
            return (pos + ang.abs() / (np.pi / 9)).sum(-1)  # (N,)

        def act(self, frame, state=None, **_):
            if not self.queue:
                s0 = torch.as_tensor(features(np.asarray(state)))[None].expand(args.samples, -1)
                mean, std = self.mean, torch.ones(H * k, 2)
                with torch.no_grad():
                    for _ in range(args.iterations):
                        acts = (mean + std * torch.randn(args.samples, H * k, 2, generator=self.gen)).clamp(-1, 1)
                        c = self.cost(rollout(s0, acts.reshape(args.samples, H, 2 * k)))
                        elite = acts[c.argsort()[:max(2, args.samples // 10)]]
                        mean, std = elite.mean(0), elite.std(0) + 0.05
                self.queue = list(mean[:args.replan_every].numpy())
                self.mean = torch.cat([mean[args.replan_every:], torch.zeros(args.replan_every, 2)])
            return self.queue.pop(0)

    cfg = EvalConfig(data=args.data, policy="learned state model + CEM, true-state cost",
                     episodes=args.episodes, seed=args.seed)
    res = run_protocol(cfg, StatePlanner())["summary"]
    print(f"\nprotocol ({args.episodes} pairs, seed {args.seed}), CEM {args.samples} x {args.iterations}, horizon {H}, "
          f"replan every {args.replan_every} env steps: {100 * res['success_rate']:.0f}% "
          f"[{100 * res['ci95'][0]:.1f}, {100 * res['ci95'][1]:.1f}]")


if __name__ == "__main__":
    main()
