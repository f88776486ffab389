"""Is the Push-T block angle in the frames? Why its probe reads R^2 about 0 (docs/physics.md#probes).

    python benchmarks/diag_pusht_angle.py --data pusht.h5

Checks, on the frames of a Push-T dataset (train split to fit, test split to score, every
``--every``-th frame):

1. the recorded state and frame agree: each frame is re-rendered from its state and compared;
2. the probe's targets: the angle column's range and how far it moves within an episode;
3. ridge probes (:func:`worldjepa.metrics.linear_r2`) of the sine and cosine of the angle
   (and of twice the angle) from (a) the whole frame, grey, downsampled to 32 x 32, and (b) a
   24 x 24 grey crop centred on the block's recorded position: the same pixels, with the
   block's position taken out.

If (b) reads the angle and (a) does not, the angle is in the frames but not as a linear
function of the whole image: a probe of a global embedding needs an encoder that has made
it one.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a worldjepa/PushT-* dataset")
    ap.add_argument("--every", type=int, default=5, help="use one frame in this many")
    ap.add_argument("--crop", type=int, default=24, help="side of the block-centred crop (pixels)")
    args = ap.parse_args()

    from worldjepa.data.dataset import Dataset
    from worldjepa.envs.adapter import make_env
    from worldjepa.envs.pusht import TABLE
    from worldjepa.metrics import linear_r2

    with Dataset(args.data) as ds:
        if not ds.env_id.startswith("worldjepa/PushT"):
            raise SystemExit(f"{args.data} holds {ds.env_id}, not Push-T")
        split = {name: ds.rows(ds.episode_ids(name))[::args.every] for name in ("train", "test")}
        frames = {k: ds.read_frames(v) for k, v in split.items()}
        states = {k: ds.read_extra("state", v) for k, v in split.items()}
        env = make_env(ds.env_id, ds.frame_size, **ds.env_kwargs).unwrapped
        size = ds.frame_size
        ranges = [np.ptp(np.unwrap(ds.read_extra("state", ds.rows([e]))[:, 4])) for e in ds.episode_ids("train")]

    f, s = frames["test"], states["test"]
    worst = max(int(np.abs(env.render_state(s[i]).astype(int) - f[i].astype(int)).max()) for i in range(0, len(f), 25))
    print(f"1. frames re-rendered from their states: largest pixel difference {worst} (of 255) over "
          f"{len(range(0, len(f), 25))} test frames")
    a = states["train"][:, 4]
    print(f"2. angle column: min {a.min():.3f}, max {a.max():.3f} rad (wrapped to [-pi, pi)); within a train "
          f"episode it sweeps {np.median(ranges):.2f} rad at the median ({np.min(ranges):.2f}-{np.max(ranges):.2f})")

    def whole(x: np.ndarray) -> np.ndarray:
        g = x.astype(np.float32).mean(-1) / 255  # (N, S, S)
        k = size // 32
        return g.reshape(len(g), 32, k, 32, k).mean((2, 4)).reshape(len(g), -1)

    def crop(x: np.ndarray, st: np.ndarray) -> np.ndarray:
        h = args.crop // 2
        g = np.pad(x.astype(np.float32).mean(-1) / 255, ((0, 0), (h, h), (h, h)), mode="edge")
        centre = np.round(st[:, 2:4] / TABLE * size).astype(int) + h  # (N, 2) x, y in padded pixels
        return np.stack([g[i, cy - h:cy + h, cx - h:cx + h].ravel() for i, (cx, cy) in enumerate(centre)])

    targets = lambda st: np.stack([np.sin(st[:, 4]), np.cos(st[:, 4]), np.sin(2 * st[:, 4]),  # noqa: E731
                                   np.cos(2 * st[:, 4])], 1)
    names = ["sin", "cos", "sin 2x", "cos 2x"]
    yt, ys = targets(states["train"]), targets(states["test"])
    print(f"3. ridge probes, {len(yt)} train frames, {len(ys)} test frames (held-out episodes), R^2:")
    for label, xt, xs in (("whole frame, 32x32 grey", whole(frames["train"]), whole(frames["test"])),
                          (f"{args.crop}x{args.crop} crop on the block", crop(frames["train"], states["train"]),
                           crop(frames["test"], states["test"]))):
        r2 = linear_r2(xt, yt, xs, ys, ridge=1e-2)["r2_per_target"]
        print(f"   {label:<28} " + ", ".join(f"{n} {v:.3f}" for n, v in zip(names, r2)))


if __name__ == "__main__":
    main()
