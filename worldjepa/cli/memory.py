"""``worldjepa memory build|query|stats|events``: the agent's long-term memory, from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import WorldJepaError
from .common import add_config_args, config_from_args

EXAMPLE = """examples:
  worldjepa memory build --run runs/tworoom --data data/tworoom.h5 --out mem.db
  worldjepa memory query mem.db --frame goal.png           # where and when did I see this?
  worldjepa memory stats mem.db
  worldjepa memory events mem.db --limit 20
  worldjepa eval --data data/tworoom.h5 --policy runs/tworoom --far --memory mem.db   # reason over it
"""


def register(sub: Any) -> None:
    from ..configs import MemoryBuildConfig

    p = sub.add_parser("memory", help="build and query a long-term memory (what was seen, where, when)",
                       description="A long-term memory: the frames of reward-free recordings embedded by a world "
                                   "model, with where and when they were seen and how surprising they were, in one "
                                   "SQLite file, and a map of remembered places that `eval --memory` and `plan "
                                   "--memory` search for routes to far goals.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE)
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    b = verbs.add_parser("build", help="remember a dataset's frames with a run's encoder, and build the map",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLE)
    add_config_args(b, MemoryBuildConfig)
    b.add_argument("--json", action="store_true", help="print the stats as JSON")
    b.set_defaults(func=cmd_build)
    q = verbs.add_parser("query", help="the remembered moments nearest to a frame: where and when it was seen")
    q.add_argument("memory", help="a memory file")
    q.add_argument("--frame", required=True, help="an image file (png/jpg), any size")
    q.add_argument("--run", default="", help="the run whose encoder embeds the frame (default: the one the memory "
                                             "was built with)")
    q.add_argument("-k", type=int, default=5, help="how many nearest moments (default: 5)")
    q.add_argument("--json", action="store_true", help="print as JSON")
    q.set_defaults(func=cmd_query)
    for verb, fn, text in (("stats", cmd_stats, "entries, events, episodes, the map, the file"),
                           ("events", cmd_events, "the events the memory was segmented into (new at surprise peaks)")):
        v = verbs.add_parser(verb, help=text)
        v.add_argument("memory", help="a memory file")
        v.add_argument("--json", action="store_true", help="print as JSON")
        if verb == "events":
            v.add_argument("--limit", type=int, default=30, help="print at most this many (default: 30; 0 = all)")
        v.set_defaults(func=fn)


def cmd_build(args: argparse.Namespace) -> int:
    from ..memory import build_memory

    cfg = config_from_args(args)
    if not cfg.run or not cfg.data:
        raise WorldJepaError("pass --run RUN_DIR (the encoder) and --data FILE (the recordings to remember)")
    from ..paths import check_outputs

    check_outputs({"--out": (cfg.out, ("sqlite",))}, {"--run": cfg.run, "--data": cfg.data})
    if Path(cfg.out).exists() and not cfg.overwrite:
        raise WorldJepaError(f"--out {cfg.out} exists: pass --overwrite to replace it (its entries are lost)")
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    stats = build_memory(cfg.run, cfg.data, cfg.out, split=cfg.split, stride=cfg.stride, radius=cfg.radius,
                         radius_steps=cfg.radius_steps, edge_steps=cfg.edge_steps, capacity=cfg.capacity,
                         merge_radius=cfg.merge_radius, overwrite=cfg.overwrite, seed=cfg.seed, progress=cfg.progress,
                         shortcuts=cfg.shortcuts, subgoals=cfg.subgoals, device=cfg.device)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    print(f"memory {cfg.out}: {stats['entries']} entries from {stats['episodes']} episodes, {stats['events']} events; "
          f"map of {stats['landmarks']} landmarks and {stats['edges']} edges (landmark radius {stats['radius']:.4f})"
          + (f"; {stats['shortcut_edges']} of them shortcuts the world model judged reachable "
             f"({stats['shortcut_candidates']} candidates)" if cfg.shortcuts else ""))
    fit = stats.get("subgoals")
    if fit is not None:
        line = f"subgoal model: {fit['train_steps']} steps in {fit['seconds']:.0f} s"
        if fit.get("val_subgoal_error") is not None:
            line += (f"; on {fit['val_episodes']} held-out episodes its subgoal lies {fit['val_subgoal_error']:.3f} "
                     f"from the recorded one (staying put: {fit['val_stay_error']:.3f}, the straight line: "
                     f"{fit['val_line_error']:.3f}), steps to the goal off by {fit['val_steps_mae']:.1f}")
        print(line)
        err = fit.get("val_subgoal_error")
        if err is not None and err >= min(fit["val_stay_error"], fit["val_line_error"]):
            print("  hint: on held-out episodes the subgoal model guesses no better than a trivial guess: train it "
                  "longer (--subgoals N, e.g. 20000) or on more recordings before planning with it")
    share = stats["two_way_pairs"]
    print(f"routes: {100 * share:.0f}% of the place pairs are joined both ways ({stats['components']} strongly "
          f"connected part(s), the largest {100 * stats['largest_component']:.0f}% of the landmarks)")
    if share < 0.9:
        print("  hint: the recordings joined few places in both directions: record more (more or longer episodes), "
              "coarsen the landmarks (--radius-steps 6), or let the world model add edges (--shortcuts 8); "
              "the agent also learns edges as it acts (route_learn)"
              + ("" if cfg.subgoals else "; where no route exists, a subgoal model (--subgoals 20000) can guide it"))
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    import numpy as np

    from ..agent import check_frame
    from ..envs.adapter import resize_frame
    from ..memory import MemoryStore
    from ..world_model import load_world_model, model_fingerprint

    try:
        from PIL import Image

        with Image.open(args.frame) as im:
            frame = np.asarray(im.convert("RGB"))
    except (OSError, ValueError) as e:
        raise WorldJepaError(f"cannot read image {args.frame}: {e}") from None
    if args.k < 1:
        raise WorldJepaError(f"-k must be >= 1, got {args.k}")
    with MemoryStore.open(args.memory, readonly=True) as store:
        run = args.run or store.meta.get("run", "")
        if not run:
            raise WorldJepaError(f"{args.memory} records no run: pass --run")
        model, meta = load_world_model(run)
        if model_fingerprint(model) != store.fingerprint:
            raise WorldJepaError(f"{args.memory} was built with another model than {run} (fingerprint "
                                 f"{store.fingerprint}, the run's {model_fingerprint(model)})")
        if model.proprio:
            raise WorldJepaError(f"{run} also takes proprioception: a frame alone does not give its embedding")
        z = model.encode(resize_frame(check_frame(frame, "--frame"), int(meta["frame_size"]))[None])[0]
        ids, dists = store.nearest(z.detach().numpy(), k=args.k)
        held = ids[0] >= 0  # -k beyond the entries it holds: all of them
        ids, dists = ids[:, held], dists[:, held]
        hits = store.get(ids[0])
    rows = [{"entry": int(i), "episode": int(e), "step": int(s), "time": float(t), "event": int(ev), "distance": float(d)}
            for i, e, s, t, ev, d in zip(ids[0], hits["episode"], hits["step"], hits["time"], hits["event"], dists[0])]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{args.frame}: the {len(rows)} nearest remembered moments in {args.memory}")
    print(f"{'entry':>7} {'episode':>7} {'step':>5} {'event':>5} {'distance':>9}")
    for r in rows:
        print(f"{r['entry']:>7} {r['episode']:>7} {r['step']:>5} {r['event']:>5} {r['distance']:>9.4f}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    print_stats(args.memory, as_json=args.json)
    return 0


def print_stats(path: Any, as_json: bool = False) -> None:
    """A memory file's entries, events, episodes, map, subgoal model and file (also `worldjepa info`)."""
    from ..memory import MemoryStore

    with MemoryStore.open(path, readonly=True) as store:
        stats = store.stats()
        graph = store.graph()
        sub = store.model("subgoals")
    if graph is not None:
        stats.update(landmarks=int(len(graph[0])), edges=int(len(graph[1])), map=graph[3])
    if sub is not None:
        stats["subgoal_model"] = sub[0]
    if as_json:
        print(json.dumps(stats, indent=2, default=str))
        return
    rows = list(_flat(stats))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:>{width}}  {v}")


def _flat(d: dict, prefix: str = ""):
    """``(key, text)`` rows of a nested dict for the terminal: nested keys dotted, floats to 4 digits."""
    for k, v in d.items():
        if isinstance(v, dict) and v:
            yield from _flat(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}", f"{v:.4g}" if isinstance(v, float) else str(v)


def cmd_events(args: argparse.Namespace) -> int:
    from ..memory import MemoryStore

    if args.limit < 0:
        raise WorldJepaError(f"--limit must be >= 0 (0 = all), got {args.limit}")
    with MemoryStore.open(args.memory, readonly=True) as store:
        events = store.events()
    shown = events if not args.limit else events[:args.limit]
    if args.json:
        print(json.dumps(shown, indent=2))
        return 0
    print(f"{len(events)} events in {args.memory}" + (f" (the first {len(shown)})" if len(shown) < len(events) else ""))
    print(f"{'event':>6} {'episode':>7} {'steps':>11} {'entries':>7}")
    for e in shown:
        print(f"{e['event']:>6} {e['episode']:>7} {e['start_step']:>5}-{e['end_step']:<5} {e['entries']:>7}")
    return 0
