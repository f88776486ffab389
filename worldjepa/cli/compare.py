"""``worldjepa compare``: eval results files side by side, with paired tests on their shared pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("compare", help="compare eval results files: success with CI, paired tests on shared pairs",
                       description="Read the results of earlier `worldjepa eval --json` runs (each file one\n"
                                   "policy or several) and print them as `eval` does: one row per policy with its\n"
                                   "success rate and 95% Wilson interval, and every two policies paired on the\n"
                                   "start/goal pairs both met (exact McNemar test). Nothing is run again. The files\n"
                                   "must share env, dataset and protocol (split, goal offset, budget, far goals).",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  worldjepa compare flat.json memory.json\n"
                              "  worldjepa compare flat-s0.json flat-s1.json mem-s0.json mem-s1.json --pool "
                              "--plot success.png")
    p.add_argument("results", nargs="+", metavar="RESULTS", help="results files written by `worldjepa eval --json`")
    p.add_argument("--pool", action="store_true",
                   help="one row per policy (the same run, weights and agent options): the records of all its "
                        "files pooled (e.g. eval seeds run apart), the rate and interval over all of them")
    p.add_argument("--plot", metavar="PNG", help="also draw the success rates with their intervals (.png)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval.report import save_results_plot
    from .eval import print_comparisons, print_table

    if args.plot:
        from ..errors import ConfigError
        from ..eval.plots import check_png_name

        if any(Path(args.plot).resolve() == Path(f).resolve() for f in args.results):
            raise ConfigError(f"--plot {args.plot} is one of the results files: choose another name")
        check_png_name(args.plot, "--plot")
    found = load_results(args.results)
    rows = pool(found) if args.pool else label(found)
    print_table(rows)
    print_comparisons(rows)
    if args.plot:
        save_results_plot(args.plot, rows)
        print(f"plot written to {args.plot}")
    return 0


PROTOCOL_KEYS = ("split", "goal_offset", "budget", "far", "far_min_steps", "far_budget_factor", "far_min_distance")


def load_results(paths: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(policy name, file, result)`` for every policy of every file, checked to be of one protocol."""
    from ..errors import ConfigError
    from ..eval.protocol import RESULTS_FORMAT

    seen = [Path(p).resolve() for p in paths]
    if len(set(seen)) < len(seen):
        raise ConfigError("a results file is given twice: each counts once")
    found: list[tuple[str, str, dict[str, Any]]] = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such results file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ConfigError(f"{path}: not a readable JSON file ({str(e).splitlines()[0]})") from None
        single = isinstance(data, dict) and data.get("format") == RESULTS_FORMAT
        results = {policy_name(data, Path(path).stem): data} if single else data
        if not isinstance(results, dict) or not results or not all(
                isinstance(r, dict) and r.get("format") == RESULTS_FORMAT for r in results.values()):
            raise ConfigError(f"{path}: not a results file of `worldjepa eval --json`")
        for name, r in results.items():
            missing = [k for k in ("env_id", "protocol", "records", "summary") if k not in r]
            if missing:
                raise ConfigError(f"{path}: the results of {name!r} lack {', '.join(missing)}: written by an older "
                                  "worldjepa? evaluate again")
            found.append((name, path, r))
    _, first_path, first = found[0]
    for _, path, r in found[1:]:
        for what, a, b in (("env", first["env_id"], r["env_id"]),
                           ("dataset", (first.get("dataset") or {}).get("sha256"), (r.get("dataset") or {}).get("sha256")),
                           *((f"protocol's {k}", first["protocol"].get(k), r["protocol"].get(k)) for k in PROTOCOL_KEYS)):
            if a != b:
                raise ConfigError(f"{first_path} and {path} differ in their {what} ({a} against {b}): compare "
                                  "results of one protocol")
    return found


def policy_name(r: dict[str, Any], fallback: str) -> str:
    """The policy as `eval --policy` named it (the results' ``policy_name``), else (results
    written by the Python API or an older `eval`) its run and the agent options that differ
    from the defaults."""
    if r.get("policy_name"):
        return str(r["policy_name"])
    cfg = r.get("config") or {}
    if not cfg.get("policy"):
        return fallback
    import dataclasses

    from ..configs import AgentConfig

    default, agent = dataclasses.asdict(AgentConfig()), cfg.get("agent") or {}
    flat = {**{k: v for k, v in agent.items() if k != "planner"}, **(agent.get("planner") or {})}
    ref = {**{k: v for k, v in default.items() if k != "planner"}, **default["planner"]}
    opts = " ".join(f"{k}={v}" for k, v in flat.items() if k in ref and v != ref[k] and k != "device")
    return f"{cfg['policy']}[{opts}]" if opts else str(cfg["policy"])


def identity(r: dict[str, Any]) -> str:
    """What makes two results the same policy: the run, its weights and the agent's options."""
    cfg = r.get("config") or {}
    return json.dumps([cfg.get("policy"), cfg.get("agent"), [c.get("weights_sha256") for c in r.get("checkpoints") or []]],
                      sort_keys=True, default=str)


def label(found: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One row per policy of each file; a name that several files hold is followed by its file's name."""
    names = [name for name, _, _ in found]
    return [(name if names.count(name) == 1 else f"{name} ({Path(path).name})", r) for name, path, r in found]


def pool(found: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """One row per policy (the same run, weights and options, as :func:`identity`): the records
    of all its files pooled in the order given, the summary computed again over them."""
    from ..metrics import summarize

    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, _, r in found:
        groups.setdefault(identity(r), []).append((name, r))
    rows = []
    for group in groups.values():
        name, first = group[0]
        records = [rec for _, r in group for rec in r["records"]]
        summary = {**summarize(records), "seconds": sum(r["summary"].get("seconds") or 0.0 for _, r in group)}
        rows.append((f"{name} ({len(group)} files)" if len(group) > 1 else name,
                     {**first, "records": records, "summary": summary}))
    return rows
