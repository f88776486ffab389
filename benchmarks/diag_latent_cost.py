"""What the planner's latent distance tracks: its rank correlation with parts of the true state.

    python benchmarks/diag_latent_cost.py --run runs/pusht --data pusht.h5 \
        --parts pusher=0:2 block=2:4 angle=4:5:angle

For start/goal pairs of the protocol's shape (test-split episodes, goal 25 steps later), the
latent MSE between the two frames' embeddings (the planner's cost) is compared with each
named part of the recorded state: Euclidean distance of the slice ``a:b`` (or, with the
``:angle`` suffix, the wrapped angle difference). Prints the Spearman correlation of each part
with the latent distance and the coefficients of a least-squares fit on the standardised parts.
A part the task judges but the latent distance barely tracks is a part the planner will neglect.

    python benchmarks/diag_latent_cost.py --run runs/pusht --data pusht.h5 --perturb

`--perturb` (Push-T) asks the same question under control: test-split states are drawn again
with one thing changed (the block moved 20 units along x, the block turned by pi/9, the pusher
moved 40 units along x: the success thresholds, and a typical pusher move), and the latent
MSE each change causes is printed beside that of moving the block. A latent in which turning
the block by the angle threshold costs a fraction of moving it by the distance threshold
leads a planner to fix the position and neglect the angle.

    python benchmarks/diag_latent_cost.py --run runs/pusht --data pusht.h5 --saturation

`--saturation` (Push-T) moves the block of test-split states by 10 to 240 units (a random
direction; states that would leave the table are dropped) and prints the latent MSE each
distance causes, and the same for the world model's frozen encoder output (MSE over its
per-dimension variance). A distance that stops growing past some range is a goal the
planner cannot tell near from far.
"""

from __future__ import annotations

import argparse

import numpy as np


def part_distance(a: np.ndarray, b: np.ndarray, spec: str) -> float:
    lo, hi, *kind = spec.split(":")
    d = a[int(lo):int(hi)] - b[int(lo):int(hi)]
    if kind == ["angle"]:
        d = (d + np.pi) % (2 * np.pi) - np.pi
    return float(np.linalg.norm(d))


def features(model, frames: np.ndarray, kind: str):
    """(L, H, W, 3) uint8 frames -> (L, F): the latent, the CNN's spatial map, the pixels, or a
    pretraining run's embedding / projection."""
    from worldjepa.nn import frames_to_float

    x = frames_to_float(frames)  # (L, 3, H, W)
    if getattr(model, "projector", None) is not None and kind in ("embedding", "projection"):
        h, p = model(x)  # a LeJEPA pretraining run: encoder embedding and projector output
        return h if kind == "embedding" else p
    if kind == "latent":
        return model.encode(frames)
    if kind == "pixels":
        return x.flatten(1)
    if not hasattr(model.encoder, "convs"):
        raise SystemExit("--features spatial needs the CNN encoder")
    return model.encoder.convs(x * 2 - 1).flatten(1)  # (L, C * grid * grid)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--parts", nargs="+", default=[], help="name=a:b or name=a:b:angle slices of the state")
    ap.add_argument("--perturb", action="store_true", help="Push-T: latent change caused by moving / turning "
                                                            "the block and moving the pusher (see above)")
    ap.add_argument("--saturation", action="store_true", help="Push-T: latent change as the block moves "
                    "10..240 units: where the distance stops growing")
    ap.add_argument("--episodes", type=int, default=60, help="test-split episodes used")
    ap.add_argument("--pairs", type=int, default=8, help="pairs per episode")
    ap.add_argument("--goal-offset", type=int, default=25)
    ap.add_argument("--features", choices=("latent", "spatial", "pixels", "embedding", "projection"),
                    default="latent",
                    help="distance in: the planner's latent (default), the CNN's last spatial feature map "
                         "(before flatten), or raw pixels - references for what another cost would track; "
                         "for a `worldjepa pretrain` run: its encoder embedding or projector output")
    args = ap.parse_args()

    import torch
    from scipy.stats import spearmanr

    from worldjepa import checkpoint as ckpt
    from worldjepa.data.dataset import Dataset
    from worldjepa.world_model import load_world_model

    torch.set_num_threads(1)
    if ckpt.read_meta(args.run).get("kind") == "lejepa":
        from worldjepa.encoder_model import load_encoder_model

        model, _ = load_encoder_model(args.run)
        args.features = "embedding" if args.features == "latent" else args.features
        args.lejepa = True
    else:
        model, _ = load_world_model(args.run)
        args.lejepa = False
    if args.perturb or args.saturation:
        return perturb(model, args)
    if not args.parts:
        raise SystemExit("pass --parts (or --perturb)")
    parts = dict(p.split("=", 1) for p in args.parts)
    rng = np.random.default_rng(0)
    rows = []
    with Dataset(args.data) as ds, torch.no_grad():
        for e in ds.episode_ids("test")[:args.episodes]:
            ep = ds.episode(int(e))
            z, st = features(model, ep["frames"], args.features), ep["state"]  # (L, F), (L, K)
            for t in rng.integers(0, len(z) - args.goal_offset - 1, args.pairs):
                g = t + args.goal_offset
                rows.append([float((z[t] - z[g]).square().mean())] +
                            [part_distance(st[t], st[g], spec) for spec in parts.values()])
    r = np.asarray(rows)
    x = np.c_[r[:, 1:] / r[:, 1:].std(0), np.ones(len(r))]
    coef = np.linalg.lstsq(x, r[:, 0], rcond=None)[0]
    print(f"{len(r)} pairs from {args.data}, run {args.run}, distance in: {args.features}\n")
    print(f"| part | Spearman with the {args.features} MSE | fit coefficient (standardised) |\n|---|---|---|")
    for i, name in enumerate(parts):
        print(f"| {name} | {spearmanr(r[:, 0], r[:, i + 1]).statistic:.2f} | {coef[i]:.3f} |")


def perturb(model, args) -> None:
    """Latent MSE caused by controlled changes of Push-T states (``--perturb``)."""
    import gymnasium as gym
    import torch

    import worldjepa.envs  # noqa: F401  (registers the ids)
    from worldjepa.data.dataset import Dataset

    with Dataset(args.data) as ds:
        if not ds.env_id.startswith("worldjepa/PushT"):
            raise SystemExit(f"--perturb is for Push-T datasets, not {ds.env_id}")
        env = gym.make(ds.env_id, size=ds.frame_size).unwrapped
        states = np.concatenate([ds.episode(int(e))["state"][::10] for e in ds.episode_ids("test")[:args.episodes]])
    changes = {"block moved 20 units": (2, 20.0), "block turned pi/9": (4, np.pi / 9),
               "pusher moved 40 units": (0, 40.0)}

    def latent(st: np.ndarray) -> torch.Tensor:
        frames = np.stack([env.render_state(s) for s in st])
        if args.lejepa:  # a pretraining run: its embedding
            return features(model, frames, args.features)
        proprio = model.proprio_of({"state": st}) if model.proprio else None
        return model.encode(frames, proprio)

    if args.saturation:
        return saturation(model, env, states, latent, args)
    with torch.no_grad():
        base = latent(states)
        cost = {}
        for name, (i, amount) in changes.items():
            moved = states.copy()
            moved[:, i] += amount
            moved[:, 4] = (moved[:, 4] + np.pi) % (2 * np.pi) - np.pi
            cost[name] = float((latent(moved) - base).square().mean())
    print(f"{len(states)} test-split states of {args.data}, run {args.run}\n")
    print("| change | latent MSE | relative to moving the block 20 units |\n|---|---|---|")
    for name, c in cost.items():
        print(f"| {name} | {c:.4g} | {c / cost['block moved 20 units']:.2f} |")


def saturation(model, env, states: np.ndarray, latent, args) -> None:
    """Latent MSE against how far the block moved (``--saturation``)."""
    import torch

    from worldjepa.nn import frames_to_float

    def encoder_out(st: np.ndarray) -> torch.Tensor:
        return model.encoder(frames_to_float(np.stack([env.render_state(s) for s in st])))

    rng = np.random.default_rng(0)
    rows = []
    with torch.no_grad():
        base, base_h = latent(states), (None if args.lejepa else encoder_out(states))
        var_h = None if base_h is None else base_h.var(0).mean()
        for d in (10, 20, 40, 80, 160, 240):
            moved = states.copy()
            angle = rng.uniform(0, 2 * np.pi, len(moved))
            moved[:, 2] += d * np.cos(angle)
            moved[:, 3] += d * np.sin(angle)
            ok = np.all((moved[:, 2:4] > 60) & (moved[:, 2:4] < 452), axis=1)  # the block stays on the table
            row = [d, int(ok.sum()), float((latent(moved[ok]) - base[ok]).square().mean())]
            if base_h is not None:
                row.append(float((encoder_out(moved[ok]) - base_h[ok]).square().mean() / var_h))
            rows.append(row)
    print(f"test-split states of {args.data}, run {args.run}\n")
    print("| block moved (units) | states | latent MSE | encoder output MSE / its variance |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.4g} | {r[3]:.4g} |" if len(r) > 3 else f"| {r[0]} | {r[1]} | {r[2]:.4g} | - |")


if __name__ == "__main__":
    main()
