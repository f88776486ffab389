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

Two inductive biases a pixel model does not have, to ask whether the data or the model is short:
`--frame block` makes the MLP see the scene from the block (pusher position relative to the
block, velocities and actions rotated into the block's frame) and predict the change in that
frame, so Push-T's physics is the same function at every block pose; `--augment d4` trains on
every window under a random symmetry of the square table (mirrors and the x/y swap, which the
physics and the drawing respect exactly), 8 times the data.

Three controls: `--model sim` plans with the same CEM and cost on the true simulator (no
learning), the ceiling of this script's planner; after every evaluation of a learned model the
script prints the model's block error along the plans CEM chose, checked in the simulator (the
error where the planner searches, beside the error along recorded actions); `--aggregate R`
then plans on pairs of the val split, adds those episodes (the planner's own actions) to the
training data, trains on, and evaluates again, R times.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def features(s: np.ndarray) -> np.ndarray:
    """Push-T states ``(..., 8)`` -> normalised features ``(..., 9)``."""
    return np.concatenate([s[..., :4] / 256 - 1, np.cos(s[..., 4:5]), np.sin(s[..., 4:5]),
                           s[..., 5:7] / 200, s[..., 7:8] / 5], -1).astype(np.float32)


def wrap(x):
    """Angles (array or tensor) wrapped into [-pi, pi)."""
    return (x + np.pi) % (2 * np.pi) - np.pi


def d4(s: np.ndarray, a: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random symmetry of the square table applied to states ``(T, 8)`` and actions ``(T', 2)``.

    Mirror x, mirror y and the x/y swap, each with probability 1/2 (the 8 elements of the
    square's group). Push-T's physics and drawing are symmetric under them (the T is symmetric
    about its own y axis): mirroring x maps the block angle to -angle, mirroring y to pi - angle,
    the swap to -pi/2 - angle; the spin changes sign under each.
    """
    s, a = s.copy(), a.copy()
    if rng.random() < 0.5:  # x -> 512 - x
        s[:, [0, 2]] = 512 - s[:, [0, 2]]
        s[:, [4, 5, 7]] *= -1
        a[:, 0] *= -1
    if rng.random() < 0.5:  # y -> 512 - y
        s[:, [1, 3]] = 512 - s[:, [1, 3]]
        s[:, 4] = np.pi - s[:, 4]
        s[:, [6, 7]] *= -1
        a[:, 1] *= -1
    if rng.random() < 0.5:  # x <-> y
        s[:, [0, 1, 2, 3, 5, 6]] = s[:, [1, 0, 3, 2, 6, 5]]
        s[:, 4] = -np.pi / 2 - s[:, 4]
        s[:, 7] *= -1
        a[:, [0, 1]] = a[:, [1, 0]]
    return s, a


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="a worldjepa/PushT-v1 or -v0 dataset (records 'state')")
    ap.add_argument("--steps", type=int, default=4000, help="training steps (batches of 128 windows)")
    ap.add_argument("--episodes", type=int, default=30, help="protocol pairs to plan on (0 = skip planning)")
    ap.add_argument("--frameskip", type=int, default=5)
    ap.add_argument("--horizon", type=int, default=5, help="model steps per plan")
    ap.add_argument("--train-rollout", type=int, default=3, help="model steps of the open-loop training rollouts")
    ap.add_argument("--replan-every", type=int, default=5, help="env steps executed per plan")
    ap.add_argument("--samples", type=int, default=300)
    ap.add_argument("--iterations", type=int, default=30, help="CEM iterations (elites: a tenth of the samples)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the pair draw (as `worldjepa eval --seed`)")
    ap.add_argument("--frame", choices=("world", "block"), default="world",
                    help="world: the MLP sees the state and actions in table coordinates; block: it sees "
                         "them in the block's own frame (pusher relative to the block, velocities and "
                         "actions rotated by minus the block's angle) and predicts the change in that frame, "
                         "so what it learns at one block pose holds at every pose (walls aside)")
    ap.add_argument("--model", choices=("learned", "sim"), default="learned",
                    help="sim: plan on the true simulator instead of a learned model (no training): the "
                         "control that tells whether this script's planner and cost can reach the target at all")
    ap.add_argument("--aggregate", type=int, default=0, metavar="ROUNDS",
                    help="learned models: rounds of data aggregation after the first evaluation: plan on --aggregate-pairs pairs "
                         "of the val split, add those episodes to the training data, train --aggregate-steps "
                         "more, evaluate on the test pairs again")
    ap.add_argument("--aggregate-pairs", type=int, default=100)
    ap.add_argument("--aggregate-steps", type=int, default=4000)
    ap.add_argument("--augment", choices=("none", "d4"), default="none",
                    help="d4: train on each window under a random symmetry of the square table (mirrors, "
                         "x/y swap), 8 times the data")
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
        if not ds.env_id.startswith("worldjepa/PushT") or "state" not in ds.extras:
            raise SystemExit(f"{args.data}: this check needs a worldjepa/PushT dataset with states, got {ds.env_id}")
        env_id = ds.env_id
        train = [ds.episode(int(e)) for e in ds.episode_ids("train")]
        test = [ds.episode(int(e)) for e in ds.episode_ids("test")]
    n_in = 9 + 2 * k if args.frame == "world" else 5 + 2 * k
    net = nn.Sequential(nn.Linear(n_in, 512), nn.GELU(), nn.Linear(512, 512), nn.GELU(),
                        nn.Linear(512, 512), nn.GELU(), nn.Linear(512, 9))
    rng = np.random.default_rng(0)

    def windows(eps: list, n: int, steps: int, aug: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """States at ``steps + 1`` model-step boundaries ``(n, steps + 1, 9)``, macro-actions ``(n, steps, 2k)``."""
        s, a = [], []
        for _ in range(n):
            ep = eps[int(rng.integers(len(eps)))]
            t = int(rng.integers(0, len(ep["actions"]) - steps * k + 1))
            st, ac = ep["state"][t:t + steps * k + 1:k], ep["actions"][t:t + steps * k]
            if args.augment == "d4" and aug:
                st, ac = d4(np.asarray(st, np.float64), np.asarray(ac, np.float64), rng)
            s.append(features(st))
            a.append(np.asarray(ac, np.float32).reshape(steps, 2 * k))
        return torch.as_tensor(np.stack(s)), torch.as_tensor(np.stack(a)).float()

    def block_step(f: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """One model step in the block's frame: features ``(N, 9)``, actions ``(N, 2k)`` -> ``(N, 9)``."""
        p, b = (f[:, 0:2] + 1) * 256, (f[:, 2:4] + 1) * 256  # pusher, block position (units)
        c, sn = f[:, 4:5], f[:, 5:6]  # cos, sin of the block angle
        norm = torch.sqrt(c * c + sn * sn).clamp_min(1e-6)
        c, sn = c / norm, sn / norm

        def to_block(x: torch.Tensor) -> torch.Tensor:  # (N, m, 2) world -> block frame
            return torch.stack([c * x[..., 0] + sn * x[..., 1], -sn * x[..., 0] + c * x[..., 1]], -1)

        def to_world(x: torch.Tensor) -> torch.Tensor:  # (N, m, 2) block -> world frame
            return torch.stack([c * x[..., 0] - sn * x[..., 1], sn * x[..., 0] + c * x[..., 1]], -1)

        rel = to_block((p - b)[:, None])[:, 0] / 100  # (N, 2)
        vel = to_block(f[:, None, 6:8])[:, 0]  # (N, 2), already / 200
        ab = to_block(a.view(a.shape[0], k, 2)).flatten(1)  # (N, 2k)
        d = net(torch.cat([rel, vel, f[:, 8:9], ab], -1))  # (N, 9): changes in the block frame (the 9th unused)
        dw = to_world(d[:, :6].view(-1, 3, 2))  # (N, 3, 2): pusher move, block move, block velocity change
        th = torch.atan2(sn, c) + d[:, 6:7] * 0.3
        return torch.cat([f[:, 0:2] + dw[:, 0] * 20 / 256, f[:, 2:4] + dw[:, 1] * 20 / 256, th.cos(), th.sin(),
                          f[:, 6:8] + dw[:, 2], f[:, 8:9] + d[:, 7:8]], -1)

    def rollout(s: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """``(N, 9)``, ``(N, T, 2k)`` -> ``(N, T, 9)``."""
        out = []
        for h in range(acts.shape[1]):
            if args.frame == "world":
                s = s + net(torch.cat([s, acts[:, h]], -1))
            else:
                s = block_step(s, acts[:, h])
            out.append(s)
        return torch.stack(out, 1)

    opt = torch.optim.AdamW(net.parameters(), 1e-3)

    def fit(n_steps: int, eps: list, lr: float = 1e-3) -> None:
        """``n_steps`` of AdamW on open-loop windows of ``eps``, cosine learning rate from ``lr``."""
        net.train().requires_grad_(True)
        for step in range(n_steps):
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1 + np.cos(np.pi * step / n_steps))
            s, a = windows(eps, 128, args.train_rollout, aug=True)
            loss = (rollout(s[:, 0], a) - s[:, 1:]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval().requires_grad_(False)

    def block_errors(pred: torch.Tensor, true: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Block position (units) and angle (degrees) errors of features ``(..., 9)``."""
        ang = wrap(torch.atan2(pred[..., 5], pred[..., 4]) - torch.atan2(true[..., 5], true[..., 4]))
        return (pred[..., 2:4] - true[..., 2:4]).norm(dim=-1) * 256, ang.abs() * 180 / np.pi

    import gymnasium as gym

    step_fn = gym.make(env_id).unwrapped.advance  # the dataset's env's own pure (state, action) -> state step

    def simulate(state: np.ndarray, acts: torch.Tensor) -> torch.Tensor:
        """Candidates ``(N, H, 2k)`` played in the true physics from ``state`` -> features ``(N, H, 9)``."""
        out = np.empty((*acts.shape[:2], 9), np.float32)
        for n, seq in enumerate(acts.numpy().astype(np.float64)):
            st = np.asarray(state, np.float64)
            for h, macro in enumerate(seq):
                for j in range(k):
                    st = step_fn(st, macro[2 * j:2 * j + 2])
                out[n, h] = features(st)
        return torch.as_tensor(out)

    if args.model == "learned":
        t0 = time.time()
        fit(args.steps, train)
        print(f"{args.data}: {len(train)} train episodes, {args.steps} steps in {time.time() - t0:.0f} s")
        s, a = windows(test, 2000, H)
        pos, ang = block_errors(rollout(s[:, 0], a), s[:, 1:])  # (2000, H) each
        stay = (s[:, :1, 2:4] - s[:, 1:, 2:4]).norm(dim=-1) * 256  # (2000, H)
        print("\n| model steps | block position error, learned model (units) | its angle error (degrees) "
              "| block stays (units) |\n|---|---|---|---|")
        for h in range(H):
            print(f"| {h + 1} | {pos[:, h].mean():.1f} | {ang[:, h].mean():.1f} | {stay[:, h].mean():.1f} |")
    plan_errors: list[torch.Tensor] = []  # the learned model's block position / angle error along each chosen plan, (2, H)
    if args.episodes < 1:
        return

    class StatePlanner:
        """A policy: CEM over ``H`` macro-steps on the learned model, cost on the true goal state."""

        def __init__(self) -> None:
            self.episodes: list[dict] = []  # what it did, for --aggregate: {"state": (L, 8), "actions": (L-1, 2)}
            self.trace: list[tuple[np.ndarray, np.ndarray]] = []

        def close_trace(self) -> None:
            if len(self.trace) > args.train_rollout * k + 1:
                st = np.stack([x for x, _ in self.trace]).astype(np.float32)
                self.episodes.append({"state": st, "actions": np.stack([u for _, u in self.trace[:-1]]).astype(np.float32)})
            self.trace = []

        def reset(self, goal_frame, goal_state=None, **_):
            self.close_trace()
            self.goal = np.asarray(goal_state, np.float64)
            self.mean = torch.zeros(H * k, 2)
            self.queue: list[np.ndarray] = []
            self.gen = torch.Generator().manual_seed(0)

        def cost(self, pred: torch.Tensor) -> torch.Tensor:
            g = self.goal
            pos = ((pred[..., 2:4] - torch.tensor(g[2:4] / 256 - 1).float()) * 256).norm(dim=-1) / 20
            ang = wrap(torch.atan2(pred[..., 5], pred[..., 4]) - float(g[4]))
            return (pos + ang.abs() / (np.pi / 9)).sum(-1)  # (N,)

        def act(self, frame, state=None, **_):
            if not self.queue:
                s0 = torch.as_tensor(features(np.asarray(state)))[None].expand(args.samples, -1)
                mean, std = self.mean, torch.ones(H * k, 2)
                with torch.no_grad():
                    for _ in range(args.iterations):
                        acts = (mean + std * torch.randn(args.samples, H * k, 2, generator=self.gen)).clamp(-1, 1)
                        acts_m = acts.reshape(args.samples, H, 2 * k)
                        c = self.cost(rollout(s0, acts_m) if args.model == "learned" else simulate(state, acts_m))
                        elite = acts[c.argsort()[:max(2, args.samples // 10)]]
                        mean, std = elite.mean(0), elite.std(0) + 0.05
                if args.model == "learned":  # how wrong is the model about the plan it chose?
                    m = mean.reshape(1, H, 2 * k)
                    plan_errors.append(torch.stack(block_errors(rollout(s0[:1], m), simulate(state, m)))[:, 0])
                self.queue = list(mean[:args.replan_every].numpy())
                self.mean = torch.cat([mean[args.replan_every:], torch.zeros(args.replan_every, 2)])
            action = self.queue.pop(0)
            self.trace.append((np.asarray(state, np.float64), np.asarray(action, np.float64)))
            return action

    who = "learned state model" if args.model == "learned" else "the true simulator"
    cfg = EvalConfig(data=args.data, policy=f"{who} + CEM, true-state cost",
                     episodes=args.episodes, seed=args.seed)

    def evaluate(label: str) -> None:
        plan_errors.clear()
        res = run_protocol(cfg, StatePlanner())["summary"]
        print(f"\n{label}protocol ({args.episodes} pairs, seed {args.seed}), CEM {args.samples} x {args.iterations}, "
              f"horizon {H}, replan every {args.replan_every} env steps: {100 * res['success_rate']:.0f}% "
              f"[{100 * res['ci95'][0]:.1f}, {100 * res['ci95'][1]:.1f}]")
        if plan_errors:
            report_plan_errors()

    def report_plan_errors() -> None:
        e = torch.stack(plan_errors).mean(0)  # (2, H)
        steps = sorted({0, H // 5 - 1, (3 * H) // 5 - 1, H - 1} - {-1})
        print(f"\nblock error of the learned model along the {len(plan_errors)} plans CEM chose "
              "(against the simulator; compare with the recorded-action table above):")
        print("| model steps | " + " | ".join(str(h + 1) for h in steps) + " |")
        print("|---|" + "---|" * len(steps))
        print("| position error (units) | " + " | ".join(f"{e[0, h]:.1f}" for h in steps) + " |")
        print("| angle error (degrees) | " + " | ".join(f"{e[1, h]:.1f}" for h in steps) + " |")

    evaluate("")
    if args.model == "learned":
        for r in range(args.aggregate):
            planner = StatePlanner()
            agg_cfg = EvalConfig(data=args.data, policy="aggregation", episodes=args.aggregate_pairs, split="val",
                                 seed=1000 + r)
            run_protocol(agg_cfg, planner)
            planner.close_trace()
            train = train + planner.episodes
            fit(args.aggregate_steps, train, lr=3e-4)
            evaluate(f"after aggregation round {r + 1} (+{len(planner.episodes)} planner episodes from val pairs, "
                     f"{args.aggregate_steps} more steps): ")


if __name__ == "__main__":
    main()
