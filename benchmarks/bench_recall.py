"""Streaming recall and counting (in the spirit of Cambrian-S's VSI-Super) on Rooms-v0.

    PYTHONPATH=. python benchmarks/bench_recall.py [--run RUN | --pretrained] [--out /tmp/wj-recall]
        [--lengths 1000,3000,10000,30000] [--streams 8] [--capacity 256] [--threads 1]

An agent wanders the nine rooms of ``worldjepa/Rooms-v0`` (it sees only the room it is in) for
T frames while the object shows up briefly at n = 4..10 places (a room's spot), spread over the stream
(:func:`worldjepa.envs.rooms_tour.make_tour`). Every memory holds the same number of entries
(``--capacity``) at the end of the stream and is asked two questions by example
(:mod:`worldjepa.memory.recall`): in which order did the object first show up at four of its
places (4 choices), and how many objects (places) were there (mean relative accuracy, MRA).

Memories, all fed the same frames, embeddings (the run's world model) and thumbnails:
``ours``: a :class:`~worldjepa.memory.MemoryStore` of that capacity (retention by surprise and
novelty, merging near-duplicates) with the world model's prediction error as surprise; the
same with the plain frame difference as surprise, and with no surprise (novelty alone); FIFO
(the last N frames) and every k-th frame (k = ceil(T / N)).

Also: event boundaries (the store's surprise-peak rule over every frame) against the room
changes, precision / recall / F1 within ``--tolerance`` frames, for the prediction error and
the frame difference, each with the rule's defaults and with its ``event_z`` and
``event_window`` calibrated for that signal on 8 streams of their own (``--calibrate-events``);
the same boundaries also against every change of the scene (the room changes, and the object
appearing and vanishing, which surprise a model too); and the "repeat" check: streams where the
object shows up again at the same places (3 visits each) must still count n.

Without ``--run``, the run is made through the CLI: ``worldjepa collect --env worldjepa/Rooms-v0
--episodes 400 --steps 100`` and ``worldjepa train --steps 1500 --threads 1`` (the default world
model); with ``--pretrained``, first ``worldjepa pretrain --steps 185`` (a LeJEPA image encoder)
and then ``worldjepa train --encoder-init PRETRAIN --freeze-encoder --projector-layers 0``: a
world model on a frozen encoder, as Cambrian-S predicts the latents of a frozen vision encoder.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CAL_Z = (3.0, 6.0, 8.0, 10.0, 12.0, 16.0)  # event_z values the calibration tries
CAL_WINDOW = (10, 20, 30)  # and event_window values
GRID = 3  # example frames per room and axis (the agent at a 3 x 3 grid of places), with and without the object


def make_run(out: Path, threads: int, pretrained: bool) -> str:
    """The default world model trained end to end, or (``pretrained``) one on a frozen LeJEPA encoder."""
    from bench_reasoning import run  # the CLI in a subprocess, its command printed

    data, run_dir = out / "rooms.h5", out / ("run-frozen" if pretrained else "run")
    cli, t = [sys.executable, "-m", "worldjepa"], ["--threads", str(threads), "--no-progress"]
    if not data.exists():
        run(cli + ["collect", "--env", "worldjepa/Rooms-v0", "--episodes", "400", "--steps", "100", "--out", str(data),
                   "--no-progress"], out / "collect.log")
    extra = []
    if pretrained:
        if not (out / "pretrain").exists():
            run(cli + ["pretrain", "--data", str(data), "--out", str(out / "pretrain"), "--steps", "185", *t],
                out / "pretrain.log")
        extra = ["--encoder-init", str(out / "pretrain"), "--freeze-encoder", "--projector-layers", "0"]
    if not run_dir.exists():
        run(cli + ["train", "--data", str(data), "--out", str(run_dir), "--steps", "1500", *extra, *t],
            out / f"{run_dir.name}.log")
    return str(run_dir)


def gallery_frames(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Example frames (G, size, size, 3) of every room with the object at each of its two spots
    (label: the place) and without it (label -1), the agent at a grid of positions: what the
    questions show."""
    from worldjepa.envs.rooms import AGENT_R, COLS, ROOM, ROWS, WALL_HALF, RoomsEnv

    env = RoomsEnv(size=size)
    at = np.linspace(WALL_HALF + AGENT_R + 4, ROOM - WALL_HALF - AGENT_R - 4, GRID)
    frames, labels = [], []
    for room in range(ROWS * COLS):
        row, col = divmod(room, COLS)
        for x in at:
            for y in at:
                for shown in (0, 1, 2):
                    frames.append(env.render_state(np.array([col * ROOM + x, row * ROOM + y, shown, 0.0])))
                    labels.append(2 * room + shown - 1 if shown else -1)
    return np.stack(frames), np.array(labels)


def latent_contrast(model, size: int) -> dict:
    """What the latent sees: the median distance between frames with and without the object (the
    agent at the same place, 90 places) against frames one full step apart without it."""
    import torch

    from worldjepa.envs.rooms import COLS, OBJECT_R, ROOM, ROWS, RoomsEnv, spot
    from worldjepa.envs.tworoom import MAX_STEP

    env, rng = RoomsEnv(size=size), np.random.default_rng(0)
    plain, shown, moved = [], [], []
    while len(plain) < 90:
        room = len(plain) % (ROWS * COLS)
        p = np.array([room % COLS, room // COLS]) * ROOM + rng.uniform(10, ROOM - 10, 2)
        k = int(rng.integers(2))
        if np.hypot(*(p - spot(2 * room + k))) < OBJECT_R + 4:
            continue
        step = MAX_STEP * np.array([np.cos(a := rng.uniform(0, 2 * np.pi)), np.sin(a)])
        plain.append(env.render_state(np.r_[p, 0, 0]))
        shown.append(env.render_state(np.r_[p, 1 + k, 0]))
        moved.append(env.render_state(np.r_[p + step, 0, 0]))
    with torch.no_grad():
        a, b, c = (model.encode(np.stack(f)).numpy() for f in (plain, shown, moved))
    return {"object": float(np.median(np.linalg.norm(a - b, axis=1))),
            "one_step": float(np.median(np.linalg.norm(a - c, axis=1)))}


def order_question(tour, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Four of the object's places; 4 choices (C=4, n=4) of their order, one true; its index."""
    pick = np.sort(rng.choice(len(tour.places), 4, replace=False))
    truth = tour.places[pick]  # in order of first appearance
    choices = [truth]
    while len(choices) < 4:
        c = rng.permutation(truth)
        if not any((c == o).all() for o in choices):
            choices.append(c)
    order = rng.permutation(4)
    return np.stack(choices)[order], int(np.flatnonzero(order == 0)[0])


def memories(tmp: Path, z, s_wm, s_px, tour, args) -> dict:
    """name -> a closed memory file holding at most ``args.capacity`` entries at the end of the stream."""
    from worldjepa.memory import MemoryStore
    from worldjepa.memory.recall import every_kth_rows, fifo_rows, remember_stream

    T, N = len(z), args.capacity
    out = {}
    plans = {"ours (prediction error)": (N, s_wm, None), "ours (frame difference)": (N, s_px, None),
             "ours (novelty only)": (N, np.full(T, np.nan), None), "FIFO": (0, s_wm, fifo_rows(T, N)),
             "every k-th": (0, s_wm, every_kth_rows(T, N))}
    for name, (capacity, surprise, rows) in plans.items():
        path = tmp / f"{len(out)}.db"
        with MemoryStore.create(path, dim=z.shape[1], fingerprint="bench", capacity=capacity,
                                merge_radius=args.merge_radius if capacity else 0.0, event_gap=args.event_gap,
                                overwrite=True) as mem:
            remember_stream(mem, z, surprise, tour.frames_at, rows)
            assert len(mem) <= N, (name, len(mem))
        out[name] = path
    return out


def event_f1(tmp: Path, z, surprise, tour, tol: int, gap: int, event_z: float = 3.0, window: int = 20) -> dict:
    """The store's events over every frame (no capacity, no merging) against the room changes."""
    from worldjepa.memory import MemoryStore
    from worldjepa.memory.recall import remember_stream
    from worldjepa.metrics import boundary_f1

    with MemoryStore.create(tmp / "events.db", dim=z.shape[1], fingerprint="bench", thumb_size=0, event_gap=gap,
                            event_z=event_z, event_window=window, overwrite=True) as mem:
        remember_stream(mem, z, surprise, None, batch=1000)
        starts = [e["start_step"] for e in mem.events()[1:]]
    rooms = tour.room_changes()
    scene = np.union1d(rooms, tour.sightings[:, 1:].ravel())  # the room changes, the object appearing and vanishing
    return {**boundary_f1(starts, rooms, tol), "scene": boundary_f1(starts, scene, tol)}


def tour_for(T: int, seed: int, repeats: int = 1):
    """The stream of a length and seed (n = 4 + seed % 7 objects; a walk that visits fewer rooms long
    enough than n: the next attempt)."""
    from worldjepa.envs.rooms_tour import make_tour
    from worldjepa.errors import EnvError

    for attempt in range(100):
        try:
            return make_tour(T, objects=4 + seed % 7, repeats=repeats, seed=seed * 1000 + attempt)
        except EnvError:
            continue
    raise EnvError(f"no tour of {T} frames for seed {seed}")


def signals(model, tour, T: int) -> tuple:
    """A stream's embeddings, the world model's prediction error and the frame difference."""
    from worldjepa.memory.build import embed_stream
    from worldjepa.memory.recall import frame_difference

    z, s_wm = embed_stream(model, tour.frames, tour.actions)
    s_px = np.concatenate([frame_difference(tour.frames(i, i + 2048), tour.frames(i - 1, i)[0] if i else None)
                           for i in range(0, T, 2048)])
    return z, s_wm, s_px


def calibrate_events(model, args) -> dict:
    """Per surprise signal, the event rule's (event_z, event_window) with the best pooled F1 on 8
    calibration streams of their own (4 of 1,000 frames, 4 of 3,000; seeds 500-507, none of the
    benchmark's), at the benchmark's event_gap and tolerance."""
    cal = []
    for i, T in enumerate([1000] * 4 + [3000] * 4):
        tour = tour_for(T, 500 + i)
        cal.append((tour, *signals(model, tour, T)))
    best = {}
    with tempfile.TemporaryDirectory() as d:
        for k, kind in enumerate(("prediction error", "frame difference")):
            scores = {}
            for ez, w in [(ez, w) for ez in CAL_Z for w in CAL_WINDOW]:
                ev = [event_f1(Path(d), z, (s_wm, s_px)[k], tour, args.tolerance, args.event_gap, ez, w)
                      for tour, z, s_wm, s_px in cal]
                hits, found, true = (sum(e[x] for e in ev) for x in ("hits", "found", "true"))
                scores[(ez, w)] = 2 * hits / max(found + true, 1)
            best[kind] = max(scores, key=lambda key: (scores[key], -key[0]))  # ties: the lower z
            print(f"events, {kind}: calibrated event_z {best[kind][0]:g}, event_window {best[kind][1]} "
                  f"(F1 {scores[best[kind]]:.2f} on the calibration streams)", file=sys.stderr)
    return best


def one_stream(model, gal, T: int, seed: int, args, repeats: int = 1, calibrated: dict | None = None) -> dict:
    from worldjepa.memory import MemoryStore
    from worldjepa.memory.recall import Recall
    from worldjepa.metrics import mean_relative_accuracy

    n = 4 + seed % 7
    tour = tour_for(T, seed, repeats)
    z, s_wm, s_px = signals(model, tour, T)
    rng = np.random.default_rng(seed)
    choices, answer = order_question(tour, rng)
    rec = {"T": T, "seed": seed, "n": n, "repeats": repeats, "sightings": int(len(tour.sightings)), "memories": {}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name, path in memories(tmp, z, s_wm, s_px, tour, args).items():
            with MemoryStore.open(path, readonly=True) as mem:
                r = Recall(mem, gal)
                truth_seen = set(tour.places.tolist())
                rec["memories"][name] = {
                    "order_correct": bool(r.answer_order(choices, np.random.default_rng(seed)) == answer),
                    "count": r.count(), "count_events": r.count_events(), "mra": mean_relative_accuracy(r.count(), n),
                    "false_labels": int(len(set(r.labels.tolist()) - truth_seen)), "entries": len(mem)}
        if repeats == 1:
            rec["events"] = {f"{kind}, gap {gap}": event_f1(tmp, z, sig, tour, args.tolerance, gap)
                             for kind, sig in (("prediction error", s_wm), ("frame difference", s_px))
                             for gap in sorted({0, args.event_gap})}
            for kind, sig in (("prediction error", s_wm), ("frame difference", s_px)):
                if calibrated:
                    ez, w = calibrated[kind]
                    rec["events"][f"{kind}, gap {args.event_gap}, event_z {ez:g}, window {w} (calibrated)"] = \
                        event_f1(tmp, z, sig, tour, args.tolerance, args.event_gap, ez, w)
    return rec


def ci(values, lo=0.0, hi=1.0) -> str:
    """Mean and 95% interval in percent: Wilson's for right / wrong answers, Student's t for scores."""
    from worldjepa.metrics import mean_interval, wilson_interval

    if all(isinstance(v, bool) for v in values):
        m, (a, b) = sum(values) / len(values), wilson_interval(sum(values), len(values))
    else:
        m, a, b = mean_interval(values, lo, hi)
    return f"{100 * m:.0f}% [{100 * a:.0f}, {100 * b:.0f}]"


def main() -> None:
    import torch

    from worldjepa.memory.recall import Gallery
    from worldjepa.world_model import load_world_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="", help="a Rooms-v0 run to reuse (default: collect and train one)")
    ap.add_argument("--pretrained", action="store_true", help="without --run: train the world model on a frozen "
                                                               "LeJEPA-pretrained encoder")
    ap.add_argument("--out", default="/tmp/wj-recall")
    ap.add_argument("--lengths", default="1000,3000,10000,30000")
    ap.add_argument("--streams", type=int, default=8, help="streams per length")
    ap.add_argument("--capacity", type=int, default=256, help="entries every memory holds at most")
    ap.add_argument("--merge-radius", type=float, default=-1.0,
                    help="our memory's merge radius in latent distance (default: the median distance between "
                         "consecutive frames of a separate 2,000-frame calibration tour)")
    ap.add_argument("--event-gap", type=int, default=10, help="our memory's event_gap (frames)")
    ap.add_argument("--tolerance", type=int, default=5, help="frames an event boundary may be off a room change")
    ap.add_argument("--calibrate-events", action=argparse.BooleanOptionalAction, default=True,
                    help="also score each surprise signal with the event rule's event_z and event_window chosen on "
                         "8 calibration streams of their own")
    ap.add_argument("--repeat-length", type=int, default=10000, help="length of the repeat-check streams (0: none)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report", default="", help="only print the tables of an earlier run's recall.json")
    args = ap.parse_args()
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        print(f"run {saved['run']}; latent contrast {saved.get('latent_contrast')}")
        return report(saved["records"], argparse.Namespace(**saved["args"]))
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    run_dir = args.run or make_run(out, args.threads, args.pretrained)
    model, meta = load_world_model(run_dir)
    model.eval()
    if args.merge_radius < 0:
        from worldjepa.envs.rooms_tour import make_tour
        from worldjepa.memory.build import embed_stream

        cal = make_tour(2000, objects=0, seed=999_999)
        z = embed_stream(model, cal.frames, cal.actions)[0]
        args.merge_radius = float(np.median(np.linalg.norm(z[1:] - z[:-1], axis=1)))
        print(f"merge radius {args.merge_radius:.4f} (median latent distance of consecutive frames)", file=sys.stderr)
    contrast = latent_contrast(model, int(meta["frame_size"]))
    print(f"latent distance, object in view or not: {contrast['object']:.3f}; one step apart: "
          f"{contrast['one_step']:.3f}", file=sys.stderr)
    frames, labels = gallery_frames(int(meta["frame_size"]))
    gal = Gallery.of_thumbnails(frames, labels, 16)
    t0 = time.time()
    calibrated = calibrate_events(model, args) if args.calibrate_events else None
    records = []
    for T in [int(x) for x in args.lengths.split(",")]:
        for seed in range(args.streams):
            records.append(one_stream(model, gal, T, seed, args, calibrated=calibrated))
            print(json.dumps(records[-1]), file=sys.stderr, flush=True)
    if args.repeat_length:
        for seed in range(args.streams):
            records.append(one_stream(model, gal, args.repeat_length, 100 + seed, args, repeats=3))
            print(json.dumps(records[-1]), file=sys.stderr, flush=True)
    (out / "recall.json").write_text(json.dumps({"args": vars(args), "run": run_dir, "records": records,
                                                 "latent_contrast": contrast,
                                                 "seconds": time.time() - t0, "machine": platform.platform()}, indent=1))
    report(records, args)


def report(records: list[dict], args) -> None:
    plain = [r for r in records if r["repeats"] == 1]
    lengths = sorted({r["T"] for r in plain})
    names = list(plain[0]["memories"])
    print(f"\n{len(plain) // len(lengths)} streams per length, memories of {args.capacity} entries\n")
    print("| memory | " + " | ".join(f"order, T = {T:,}" for T in lengths) + " | " +
          " | ".join(f"count MRA, T = {T:,}" for T in lengths) + " |")
    print("|---" * (1 + 2 * len(lengths)) + "|")
    for name in names:
        order = [ci([r["memories"][name]["order_correct"] for r in plain if r["T"] == T]) for T in lengths]
        mra = [ci([r["memories"][name]["mra"] for r in plain if r["T"] == T]) for T in lengths]
        print(f"| {name} | " + " | ".join(order) + " | " + " | ".join(mra) + " |")
    blind = [ci([__import__("worldjepa.metrics", fromlist=["x"]).mean_relative_accuracy(7, r["n"])
                 for r in plain if r["T"] == T]) for T in lengths]
    print("| blind guess (order: 1 in 4; count: 7) | " + " | ".join(["25%"] * len(lengths)) + " | " +
          " | ".join(blind) + " |")
    for title, truth in ((f"event boundaries vs room changes (tolerance {args.tolerance} frames): precision / recall / "
                          "F1", None), ("the same boundaries vs every change of the scene (the room changes, the object "
                                        "appearing and vanishing)", "scene")):
        print(f"\n{title}")
        for kind in [k for k in plain[0]["events"] if truth is None or truth in plain[0]["events"][k]]:
            cells = []
            for T in lengths:
                ev = [r["events"][kind] if truth is None else r["events"][kind][truth] for r in plain if r["T"] == T]
                hits, found, true = (sum(e[k] for e in ev) for k in ("hits", "found", "true"))
                p, rc = hits / max(found, 1), hits / max(true, 1)
                cells.append(f"{p:.2f} / {rc:.2f} / {2 * p * rc / max(p + rc, 1e-9):.2f}")
            print(f"| {kind} | " + " | ".join(cells) + " |")
    rep = [r for r in records if r["repeats"] > 1]
    if rep:
        from worldjepa.metrics import mean_relative_accuracy

        print(f"\nrepeat check: {len(rep)} streams of {rep[0]['T']:,} frames, the object again at its places in up to "
              f"two later visits ({sum(r['sightings'] for r in rep)} sightings of {sum(r['n'] for r in rep)} objects)")
        print("| memory | count = n | count > n | count MRA | counting events instead: MRA | events > n |")
        print("|---|---|---|---|---|---|")
        for name in names:
            m = [r["memories"][name] for r in rep]
            ev = [mean_relative_accuracy(x["count_events"], r["n"]) for x, r in zip(m, rep)]
            print(f"| {name} | {sum(x['count'] == r['n'] for x, r in zip(m, rep))}/{len(rep)} | "
                  f"{sum(x['count'] > r['n'] for x, r in zip(m, rep))}/{len(rep)} | {ci([x['mra'] for x in m])} | "
                  f"{ci(ev)} | {sum(x['count_events'] > r['n'] for x, r in zip(m, rep))}/{len(rep)} |")
    wrong = sum(x["false_labels"] for r in records for x in r["memories"].values())
    print(f"\nplaces answered that never showed the object, over all memories and streams: {wrong}")

if __name__ == "__main__":
    main()
