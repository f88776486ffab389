"""``worldjepa eval``: the held-out evaluation protocol for any goal-conditioned policy."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import add_config_args, config_from_args


def register(sub: Any) -> None:
    from ..configs import EvalConfig

    p = sub.add_parser(
        "eval", help="evaluate a policy on held-out start/goal pairs (success rate with 95%% CI)",
        description="Draw start/goal pairs (goal = the recorded frame GOAL_OFFSET steps later) from the test split "
                    "of a dataset, run the policy for BUDGET steps from each start, and report the success rate with "
                    "a 95% Wilson interval, mean final distance and steps to success. Policies: random (floor), oracle "
                    "(reads the true state: ceiling), replay (recorded actions: checks the protocol), or a run directory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  worldjepa eval --data data/tworoom.h5 --policy runs/tworoom --planner cem --json results.json\n"
               "  worldjepa eval --data data/tworoom.h5 --policy random,oracle,runs/tworoom   # one table, same pairs\n"
               "  worldjepa eval --data data/tworoom.h5 --policy runs/tworoom --far --planner mppi --horizon 8 --samples 500\n"
               "  worldjepa eval --data data/pusht.h5 --policy runs/pusht --agent \"act_steps=1 iterations=10\"\n"
               "  worldjepa eval --data data/tworoom.h5 --policy \"runs/tworoom,runs/tworoom[memory=mem.db]\" --far  "
               "# RUN[KEY=VALUE ...]: per-policy agent options\n"
               "  worldjepa eval --data data/pusht.h5 --policy runs/pusht --episodes 400 --workers 4 --json r.json\n"
               "  worldjepa eval --data data/pusht.h5 --policy runs/pusht --episodes 400 --workers 4 --json r.json --resume"
               "  # after a crash")
    add_config_args(p, EvalConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    import sys

    from ..eval.journal import Journal, sidecar
    from ..eval.media import numbered
    from ..eval.protocol import run_protocol
    from ..eval.workers import close_pools
    from ..atomic import atomic_write_text

    cfg = config_from_args(args)
    policies = split_policies(cfg.policy)
    options = [policy_options(name, cfg.agent) for name in policies]
    gifs = [cfg.gif if len(policies) == 1 or not cfg.gif else numbered(cfg.gif, i) for i in range(len(policies))]
    check_paths(cfg, options, gifs)  # first: an output that is an input is named as such
    check_extras(cfg)
    journal = Journal(sidecar(cfg.json), cfg.resume) if cfg.json else None  # records as episodes finish
    rows = []
    try:
        for name, (policy, agent), gif in zip(policies, options, gifs):  # several policies: the same pairs, one table
            one = dataclasses.replace(cfg, policy=policy, gif=gif, agent=agent)
            result = run_protocol(one, journal=journal and journal.policy(name, identity(one)), keep_workers=True,
                                  name=name)
            rows.append((name, {**result, "policy_name": name}))  # as typed: `worldjepa compare` names it so
    except BaseException:
        close_pools(cancel=True)
        if journal is not None:
            journal.close(finished=False)
            print(f"the finished episodes are kept in {journal.path}: rerun with --resume to continue", file=sys.stderr)
        raise
    close_pools()
    print_table(rows)
    print_comparisons(rows)
    if cfg.json:
        payload = rows[0][1] if len(rows) == 1 else {name: r for name, r in rows}
        atomic_write_text(cfg.json, json.dumps(payload, indent=2) + "\n")
        journal.close(finished=True)
        print(f"results written to {cfg.json}")
    if cfg.gif:
        print(f"GIF(s) written next to {cfg.gif}")
    if cfg.plot:
        from ..eval.report import save_results_plot

        save_results_plot(cfg.plot, rows)
        print(f"plot written to {cfg.plot}")
    if cfg.tensorboard:
        from ..eval.report import log_to_tensorboard

        runs = [(name, run_dir(name), r) for name, r in rows]
        written = log_to_tensorboard(runs)
        skipped = [name for name, run, _ in runs if run is None]
        print(f"TensorBoard: {', '.join(f'{w}/tb' for w in dict.fromkeys(written)) or 'nothing'}"
              + (f" ({', '.join(skipped)}: no run directory)" if skipped else ""))
    return 0


def identity(cfg: Any) -> dict[str, Any]:
    """What fixes an evaluation's episodes and records: its options (less how it runs and what it
    writes) and the dataset's fingerprint. A resumed evaluation must have the same."""
    from ..config import to_dict
    from ..data.dataset import Dataset
    from ..eval.journal import RUNTIME

    with Dataset(cfg.data) as ds:
        fingerprint = ds.fingerprint()
    return {"config": {k: v for k, v in to_dict(cfg).items() if k not in RUNTIME}, "dataset": fingerprint}


def check_extras(cfg: Any) -> None:
    """Refuse, before any episode runs, what would fail only at the end."""
    if cfg.gif:
        from ..eval.media import check_video_name

        check_video_name(cfg.gif)
    if cfg.resume and not cfg.json:
        from ..errors import ConfigError

        raise ConfigError("--resume continues from the records kept beside --json: pass the same --json FILE")
    if cfg.plot:
        from ..eval.plots import check_png_name

        check_png_name(cfg.plot, "--plot")
    if cfg.tensorboard:
        from ..monitor import require_tensorboard

        require_tensorboard()


def run_dir(name: str) -> str | None:
    """The run directory a policy name points at (the first of an ensemble), ``None`` for a reference policy."""
    from pathlib import Path

    base = name[:name.index("[")] if name.endswith("]") and "[" in name else name
    first = base if Path(base).exists() else base.split("+")[0]
    return first if Path(first).is_dir() else None


def check_paths(cfg: Any, options: list[tuple[str, Any]], gifs: list[str]) -> None:
    """Before any episode runs: no output (--json, the GIFs) is an input (the dataset, a run, a
    memory), a link, or a file of another kind; output folders exist and can be written."""
    from pathlib import Path

    from ..paths import check_outputs

    inputs: dict[str, Any] = {"--data": cfg.data}
    for policy, agent in options:
        for run in policy.split("+"):
            if Path(run).exists():  # a run folder or checkpoint (not random, oracle, ...)
                inputs[f"--policy {run}"] = run
        inputs[f"--memory {agent.memory}"] = agent.memory
    outputs = {"--json": (cfg.json, ("json",)), "--plot": (cfg.plot, ("png",))}
    outputs.update({f"--gif ({gif})" if len(gifs) > 1 else "--gif": (gif, ("gif", "mp4")) for gif in gifs if gif})
    check_outputs(outputs, inputs)


def split_policies(text: str) -> list[str]:
    """``"random,run[memory=m.db],run"`` -> its policies (commas inside ``[...]`` do not split)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in out + [cur] if p.strip()]


def policy_options(name: str, agent: Any) -> tuple[str, Any]:
    """``RUN[KEY=VALUE ...]``: the run, and the agent config with those options over ``agent``
    (one table can compare ``run`` with ``run[memory=mem.db]`` or ``run[planner=mppi]``)."""
    from ..agent import agent_config
    from ..config import parse_agent_options
    from ..errors import ConfigError

    if not name.endswith("]") or "[" not in name:
        return name, agent
    base, opts = name[:-1].split("[", 1)
    if not base:
        raise ConfigError(f"policy {name!r}: options in [...] follow a run directory")
    return base, agent_config(agent, **parse_agent_options(opts))


def print_table(rows: list[tuple[str, dict[str, Any]]]) -> None:
    """One line per evaluated policy: success rate, CI, distance, steps."""
    w = max(24, *(len(name) for name, _ in rows))  # the whole policy name: run directories differ at the end
    head = f"{'policy':<{w}} {'env':<30} {'n':>4} {'success':>8} {'95% CI':>15} {'final dist':>10} {'steps':>6}"
    print(head)
    print("-" * len(head))
    for name, r in rows:
        s = r["summary"]
        lo, hi = s["ci95"]
        dist = f"{s['mean_final_distance']:.3f}" if s["mean_final_distance"] is not None else "-"
        steps = f"{s['mean_steps_to_success']:.1f}" if s["mean_steps_to_success"] is not None else "-"
        print(f"{name:<{w}} {r['env_id'][-30:]:<30} {s['episodes']:>4} {100 * s['success_rate']:>7.1f}% "
              f"[{100 * lo:5.1f}, {100 * hi:5.1f}]% {dist:>10} {steps:>6}")
    p = rows[0][1]["protocol"]
    redrawn = p.get("solved_at_start_redrawn", 0)
    excluded = f"; {redrawn} draw(s) already solved at step 0 redrawn" if redrawn else ""
    if p["far"]:
        far = f"far goals{' >= %d oracle steps away' % p['far_min_steps'] if p.get('far_min_steps') else ''}"
        budget = f"{p['far_budget_factor']:g}x the oracle's steps" if p.get("far_budget_factor") else p["budget"]
        print(f"protocol: {p['split']} split, {far}, budget {budget}, starts restored by {p['restore']}{excluded}")
    else:
        print(f"protocol: {p['split']} split, goal +{p['goal_offset']} steps, budget {p['budget']}, "
              f"starts restored by {p['restore']}{excluded}")
    for name, r in rows:  # what each long-term memory did: the agent says when it planned flat
        mem = [rec["memory"] for rec in r["records"] if isinstance(rec.get("memory"), dict)]
        if mem:
            routed = sum(bool(m.get("routed")) for m in mem)
            guided = sum(bool(m.get("guided")) and not m.get("routed") for m in mem)
            print(f"memory of {name}: {routed} of {len(mem)} episodes routed through the map, {guided} guided by "
                  f"its subgoal model, {len(mem) - routed - guided} planned flat (no route)")


def print_comparisons(rows: list[tuple[str, dict[str, Any]]]) -> None:
    """Every two policies on the pairs both met: who solved which, and the exact McNemar p-value."""
    from ..metrics import paired_comparison

    if len(rows) < 2:
        return
    w = max(12, *(len(name) for name, _ in rows))
    print("\npaired on shared pairs (exact McNemar test: p < 0.05 = a real difference in success)")
    print(f"{'policy A':<{w}} {'policy B':<{w}} {'shared':>6} {'both':>5} {'A only':>6} {'B only':>6} "
          f"{'neither':>7} {'p':>7}")
    for i, (a, ra) in enumerate(rows):
        for b, rb in rows[i + 1:]:
            c = paired_comparison(ra["records"], rb["records"])
            print(f"{a:<{w}} {b:<{w}} {c['shared']:>6} {c['both']:>5} {c['only_a']:>6} {c['only_b']:>6} "
                  f"{c['neither']:>7} {c['p_value']:>7.3g}")
