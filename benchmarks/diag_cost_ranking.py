"""Does the world model rank action sequences the way the simulator does? (the planner's view)

    python benchmarks/diag_cost_ranking.py --run runs/pusht --data pusht.h5

CEM only needs the model to *order* candidate action sequences correctly. For start/goal pairs
of the protocol's shape (test-split episodes, goal = the recorded frame 25 steps later) this
builds candidates of the planner's horizon: noisy copies of the recorded actions and smooth
random walks (never the recorded actions themselves, whose last frame is the goal frame).
Each is run in the true env from the recorded start state and scored by the env's own error
to the goal state (``max(distance / threshold, angle / angle threshold)`` when the env has an
angle threshold: < 1 is success), and by the model: rollout from the recorded history, latent
MSE to the goal's embedding at the final step and summed along the path; and, as the ceiling a
perfect predictor would reach, the same costs of the true frames the simulator renders along
each candidate. Prints the mean per-pair Spearman correlation of each model cost with the true
error, and how often the candidate the model likes best is in the true best quarter (25% by
chance).
"""

from __future__ import annotations

import argparse

import numpy as np


def true_error(env, state: np.ndarray, goal: np.ndarray) -> float:
    """The env's error to the goal, in units of its success thresholds (success iff < 1)."""
    e = env.distance(state, goal) / env.success_threshold
    if getattr(env, "success_angle_threshold", None):
        e = max(e, env.angle_error(state, goal) / env.success_angle_threshold)
    return float(e)


def candidates(recorded: np.ndarray, n: int, rng: np.random.Generator, low, high) -> np.ndarray:
    """(n, L, A): noisy copies of the recorded sequence (std 0.15, 0.3, 0.6; never the exact one,
    whose last frame *is* the goal frame) and smooth random walks."""
    L, A = recorded.shape
    out = []
    for i in range(n):
        if i < n // 2:
            out.append(recorded + (0.15, 0.3, 0.6)[i % 3] * rng.standard_normal((L, A)))
        else:
            out.append(np.cumsum(0.4 * rng.standard_normal((L, A)), 0) + rng.uniform(-1, 1, A))
    return np.clip(np.asarray(out, np.float32), low, high)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--candidates", type=int, default=64)
    ap.add_argument("--horizon", type=int, default=5, help="model steps per candidate (the planner's horizon)")
    ap.add_argument("--goal-offset", type=int, default=25)
    args = ap.parse_args()

    import gymnasium as gym
    import torch
    from scipy.stats import spearmanr

    import worldjepa.envs  # noqa: F401  (registers the built-in envs)
    from worldjepa.data.dataset import Dataset
    from worldjepa.world_model import load_world_model

    torch.set_num_threads(1)
    model, meta = load_world_model(args.run)
    if model.proprio and model.proprio_key != "state":
        raise SystemExit(f"{args.run} takes proprioception {model.proprio!r}: this script can feed 'state' only")

    def encode(frames: np.ndarray, states: np.ndarray) -> torch.Tensor:
        return model.encode(frames, model.proprio_of({"state": states}))  # (N, D)

    k, hist = model.frameskip, model.history
    env = gym.make(meta["env_id"]).unwrapped
    low, high = env.action_space.low, env.action_space.high
    rng = np.random.default_rng(0)
    L, lo = args.horizon * k, (hist - 1) * k  # candidate length; history reaches back lo steps
    cols: dict[str, list[float]] = {name: [] for name in (
        "imagined final", "imagined path", "true final", "true path")}
    picks: dict[str, list[bool]] = {name: [] for name in cols}
    any_success, path_pick_success = [], []
    with Dataset(args.data) as ds, torch.no_grad():
        eps = ds.episode_ids("test")
        for _ in range(100 * args.pairs):
            if len(any_success) == args.pairs:
                break
            ep = ds.episode(int(rng.choice(eps)))
            hi = len(ep["frames"]) - max(args.goal_offset, L)  # the goal and all L actions must fit
            if hi - lo < 2:
                continue
            t = int(rng.integers(lo, hi))
            g = t + args.goal_offset
            idx = np.arange(t - lo, t + 1, k)  # history frames
            z = encode(ep["frames"][idx], ep["state"][idx])  # (Th, D)
            zg = encode(ep["frames"][g:g + 1], ep["state"][g:g + 1])[0]  # (D,)
            a_hist = ep["actions"][t - lo:t].reshape(len(idx) - 1, k * ep["actions"].shape[-1])
            cands = candidates(ep["actions"][t:t + L], args.candidates, rng, low, high)  # (C, L, A)
            errs, seen, seen_state = [], [], []
            for c in cands:
                env.reset(options={"state": ep["state"][t]})
                for i, a in enumerate(c):
                    env.step(a)
                    if (i + 1) % k == 0:  # the frame at each model step, as the model would see it
                        seen.append(env.render())
                        seen_state.append(env.state)
                errs.append(true_error(env, env.state, ep["state"][g]))
            errs = np.asarray(errs)
            d_true = (encode(np.stack(seen), np.stack(seen_state)).reshape(len(cands), args.horizon, -1)
                      - zg).square().mean(-1)  # (C, H)
            macro = torch.as_tensor(cands.reshape(1, len(cands), args.horizon, -1))
            imagined = model.rollout(z[None], torch.as_tensor(a_hist, dtype=torch.float32)[None], macro)[0]  # (C, H, D)
            d_imag = (imagined - zg).square().mean(-1)  # (C, H)
            best = np.quantile(errs, 0.25)
            for name, d in (("imagined", d_imag), ("true", d_true)):
                for reduce, cost in (("final", d[:, -1].numpy()), ("path", d.sum(1).numpy())):
                    cols[f"{name} {reduce}"].append(spearmanr(cost, errs).statistic)
                    picks[f"{name} {reduce}"].append(bool(errs[np.argmin(cost)] <= best))
            any_success.append(bool(errs.min() < 1))
            path_pick_success.append(bool(errs[np.argmin(d_imag.sum(1).numpy())] < 1))
    if len(any_success) < args.pairs:
        raise SystemExit(f"only {len(any_success)} test-split episodes are long enough for history, goal and "
                         f"{L}-step candidates")
    print(f"{len(any_success)} pairs x {args.candidates} candidates of {L} env steps, run {args.run}\n")
    print("| model cost | Spearman with the true error (mean over pairs) | its best candidate in the true best quarter |")
    print("|---|---|---|")
    labels = {"imagined final": "final-step latent MSE, imagined", "imagined path": "path-summed latent MSE, imagined",
              "true final": "final-step latent MSE, of the true frames (a perfect predictor)",
              "true path": "path-summed latent MSE, of the true frames (a perfect predictor)"}
    for key, label in labels.items():
        print(f"| {label} | {np.nanmean(cols[key]):.2f} | {100 * np.mean(picks[key]):.0f}% |")
    print(f"\nsome candidate succeeds: {100 * np.mean(any_success):.0f}% of pairs; the path-cost pick succeeds: "
          f"{100 * np.mean(path_pick_success):.0f}%")


if __name__ == "__main__":
    main()
