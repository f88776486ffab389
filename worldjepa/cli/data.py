"""``worldjepa envs``, ``collect``, ``info``, and ``export`` / ``import`` (Minari)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import add_config_args, config_from_args

def register(sub: Any) -> None:
    p = sub.add_parser("envs", help="list the environments worldjepa can collect from",
                       description="List the built-in environments (and, with --all, every registered Gymnasium id).")
    p.add_argument("--all", action="store_true", help="also list every Gymnasium id registered in this process")
    p.add_argument("--env-module", default="", help="import this module first (it registers third-party ids)")
    p.set_defaults(func=cmd_envs)

    from ..configs import PRESETS, CollectConfig

    p = sub.add_parser("collect", help="record episodes from a Gymnasium environment into an HDF5 dataset",
                       description="Record episodes from any Gymnasium env that renders rgb_array frames. Frames are "
                                   "resized to SIZE x SIZE uint8, actions stored as float32, and the env's state "
                                   "(observation vector, or each entry of a Dict observation as obs/KEY, "
                                   "info['state'], numeric info entries) kept for probes and success checks.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="example: worldjepa collect --env worldjepa/TwoRoom-v0 --out data/tworoom.h5 --episodes 200 --workers 2")
    add_config_args(p, CollectConfig, presets=PRESETS["collect"])
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("info", help="summarise a dataset file, a checkpoint or a memory file",
                       description="Print episodes, steps, shapes, sizes, splits and metadata of a dataset, the "
                                   "configuration and tensors of a checkpoint (a .safetensors file or a run directory), "
                                   "or a long-term memory's stats (as `worldjepa memory stats`).")
    p.add_argument("path", help="dataset (.h5), checkpoint (.safetensors or run directory) or memory (.db)")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.add_argument("--verify", action="store_true",
                   help="also read everything back: a dataset's per-episode checksums (frames, actions, extras) and "
                        "NaN/inf; a checkpoint's tensors; exit status 2 on any problem")
    p.set_defaults(func=cmd_info)

    root_help = "Minari's datasets folder (default: $MINARI_DATASETS_PATH, else ~/.minari/datasets)"
    p = sub.add_parser("export", help="write a dataset as a Minari dataset (no minari package needed)",
                       description="Write every episode of a worldjepa dataset in Minari's on-disk format (HDF5 "
                                   "storage, raw frames): observations are a Dict of 'pixels' and the extras, with "
                                   "rewards, terminations and truncations. minari.load_dataset(NAME) reads it.",
                       epilog="example: worldjepa export data/tworoom.h5 --to minari worldjepa/tworoom-v0")
    p.add_argument("data", help="the worldjepa dataset (.h5)")
    p.add_argument("--to", nargs=2, required=True, metavar=("FORMAT", "NAME"),
                   help="minari NAME: the Minari dataset id, (NAMESPACE/)NAME-vN")
    p.add_argument("--root", default="", help=root_help)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="write a Minari dataset with image observations as a worldjepa dataset",
                       description="Read a Minari dataset (HDF5 storage) whose observations hold square (H, W, 3) "
                                   "uint8 frames: the frames, the actions, every other observation entry as an "
                                   "extra, and rewards, terminations and truncations as the reward, terminated and "
                                   "truncated extras.",
                       epilog="example: worldjepa import minari worldjepa/tworoom-v0 --out data/tworoom-copy.h5")
    p.add_argument("format", choices=["minari"], help="the source format")
    p.add_argument("name", help="the Minari dataset id")
    p.add_argument("--out", required=True, help="the worldjepa dataset file to write")
    p.add_argument("--root", default="", help=root_help)
    p.add_argument("--env", default="", help="the Gymnasium id to record (default: the dataset's)")
    p.set_defaults(func=cmd_import)


def cmd_envs(args: argparse.Namespace) -> int:
    import gymnasium as gym

    from ..envs import BUILTIN_IDS, register
    from ..envs.adapter import import_env_module

    register()
    import_env_module(args.env_module)
    ids = list(BUILTIN_IDS)
    print("built-in environments:")
    for env_id in ids:
        entry = gym.spec(env_id)
        doc = (entry.kwargs or {}).get("description", "")
        print(f"  {env_id:40s} {doc}")
    if args.all:
        print("\nall registered Gymnasium ids (any of them that renders rgb_array can be collected from):")
        for env_id in sorted(gym.registry):
            if env_id not in ids:
                print(f"  {env_id}")
    return 0


def cmd_collect(args: argparse.Namespace) -> int:
    from ..data.collect import collect

    cfg = config_from_args(args)
    report = collect(cfg)
    print(f"wrote {report['added']} episodes to {report['out']} ({report['episodes']} in the file)")
    _print_summary(cfg.out, as_json=args.json)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from ..errors import WorldJepaError
    from ..utils import sniff

    p = Path(args.path)
    if not p.exists():
        raise WorldJepaError(f"no such file or directory: {p}")
    if p.is_file() and sniff(p) == "hdf5":
        _print_summary(p, as_json=args.json)
        if args.verify:
            _verify_dataset(p)
    elif p.is_file() and sniff(p) == "sqlite":  # a memory file (anything else SQLite: refused as not a memory)
        from .memory import print_stats

        print_stats(p, as_json=args.json)
        if args.verify:
            print("verified on opening: SQLite's quick_check (every page and record well-formed), the memory's "
                  "format and fields")
    else:
        _print_checkpoint(p, as_json=args.json)
        if args.verify:
            _verify_checkpoint(p)
    return 0


def _verify_dataset(path: Path) -> None:
    """Recompute every checksum; print each problem; DatasetError (exit 2) if there is one."""
    import time

    from ..data.dataset import Dataset
    from ..errors import DatasetError

    t0 = time.perf_counter()
    with Dataset(path) as ds:
        problems = ds.verify()
        n, checked = ds.num_episodes, ds.has_checksums
    for line in problems[:50]:
        print(f"  {line}")
    if problems:
        raise DatasetError(f"{path} fails verification: {len(problems)} problem(s)"
                           + (" (the first 50 listed above)" if len(problems) > 50 else " (listed above)"))
    what = "every checksum matches" if checked else ("no checksums to check (format 1, written before worldjepa "
                                                      "recorded them): structure and NaN/inf checked only")
    print(f"verified {n} episodes in {time.perf_counter() - t0:.1f} s: {what}")


def _verify_checkpoint(path: Path) -> None:
    """Load every tensor (sizes checked against the header), look for NaN or inf, and rebuild the
    model its metadata describes from the weights (every weight present, none extra, shapes equal)."""
    from ..checkpoint import load
    from ..encoder_model import load_encoder_model
    from ..errors import CheckpointError
    from ..world_model import load_world_model

    tensors, meta = load(path)
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:
        raise CheckpointError(f"{path}: tensor(s) with NaN or inf: {', '.join(bad[:5])}")
    (load_encoder_model if meta.get("kind") == "lejepa" else load_world_model)(path)
    print(f"verified {len(tensors)} tensors: all present, sized as the header says, finite, and they fit the "
          f"model its metadata describes")


def _print_summary(path: str | Path, as_json: bool = False) -> None:
    from ..data.dataset import summarize
    from ..utils import human_bytes

    s = summarize(path)
    if as_json:
        print(json.dumps(s, indent=2))
        return
    a = s["action_space"]
    el = s["episode_length"]
    rows = [
        ("dataset", s["path"]),
        ("env", s["env_id"] + "".join(f" {k}={v}" for k, v in (s["meta"].get("env_kwargs") or {}).items())),
        ("episodes", f"{s['episodes']}  (frames per episode: min {el.get('min')}, mean {el.get('mean', 0):.1f}, max {el.get('max')})"),
        ("steps", f"{s['steps']} actions, {s['frames']} frames"),
        ("frames", f"{s['shapes']['frames']} uint8, {s['frame_size']}x{s['frame_size']}"),
        ("actions", f"{s['shapes']['actions']} float32, {a['kind']} dim {a['dim']}, low {_fmt(a['low'])}, high {_fmt(a['high'])}"),
        ("extras", ", ".join(f"{k} {s['shapes']['extras/' + k]}" for k in s["extras"]) or "none"),
        ("checksums", "per episode (frames, actions, extras): `info --verify` checks them" if s["checksums"] else
         "none (format 1, written before worldjepa recorded them; the file still loads)"),
        ("splits", ", ".join(f"{k} {v}" for k, v in s["splits"].items()) + " episodes"),
        ("size", f"{human_bytes(s['file_bytes'])} on disk ({human_bytes(s['frames_raw_bytes'])} of raw frames)"),
        ("policy", str(s["meta"].get("policy"))),
        ("made by", f"worldjepa {s['meta'].get('library_version')} on {s['meta'].get('created')}"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:>{width}}  {v}")


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in values[:6]) + (", ..." if len(values) > 6 else "") + "]"


def _print_checkpoint(path: Path, as_json: bool = False) -> None:
    from ..checkpoint import read_meta

    meta = read_meta(path)
    tensors = meta.pop("_tensors", {})
    n_params = sum(_prod(s) for k, s in tensors.items() if not k.startswith(("optim/", "rng/")))
    if as_json:
        print(json.dumps({**meta, "parameters": n_params}, indent=2))
        return
    rows = [("checkpoint", str(path))]
    rows += [(key, meta[key]) for key in ("env_id", "frame_size", "step", "library_version", "dataset") if key in meta]
    if "total_steps" in meta:
        rows.append(("finished", f"{'yes' if meta.get('finished') else 'no'} ({meta.get('step')} of "
                                 f"{meta['total_steps']} steps)"))
    rows.append(("parameters", f"{n_params:,}"))
    if "model" in meta:
        rows.append(("model", json.dumps(meta["model"])))
    rows += _final_metrics(path, meta)
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:>{width}}  {v}")


def _final_metrics(path: Path, meta: dict[str, Any]) -> list[tuple[str, str]]:
    """The validation metrics of the checkpoint's last validation (world models), and a pretrain
    run's frozen-encoder evaluation (``eval.json``), as (name, value) rows."""
    found = dict(meta.get("val") or {})
    run = path if path.is_dir() else path.parent
    if (run / "eval.json").is_file():
        found.update(json.loads((run / "eval.json").read_text()))
    rows = [(k, f"{v:.4g}") for k, v in sorted(found.items()) if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return rows or [("validation", "none yet (no validation had run when the checkpoint was saved)")]


def _prod(shape: list[int]) -> int:
    out = 1
    for s in shape:
        out *= int(s)
    return out


def cmd_export(args: argparse.Namespace) -> int:
    from ..data.minari import export_minari
    from ..errors import ConfigError

    fmt, name = args.to
    if fmt != "minari":
        raise ConfigError(f"--to {fmt}: the format worldjepa exports to is minari")
    out = export_minari(args.data, name, args.root or None)
    print(f"wrote the Minari dataset {name} to {out} (minari.load_dataset({name!r}) reads it"
          + ("" if not args.root else f" with MINARI_DATASETS_PATH={args.root}") + ")")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..data.minari import import_minari

    report = import_minari(args.name, args.out, args.root or None, env_id=args.env or None)
    print(f"wrote {report['episodes']} episodes of {report['env_id']} ({report['frame_size']}px) to {report['out']}")
    return 0
