"""The held-out evaluation protocol: fixed, model-independent, reported with a 95% CI.

Start/goal pairs are drawn with a fixed seed from the **test split** of a dataset (episodes
no model trained on): pick a test episode uniformly, then a step ``t`` uniformly such that
``t + k`` is in the episode; the start is the recorded state at ``t``, the goal the recorded
frame (and state) at ``t + k`` (``k`` = ``goal_offset``, default 25). The policy gets
``budget`` steps (default 50); an episode succeeds at the first step where the env's
``success(state, goal_state)`` holds. In the "far goal" variant the goal state is drawn
from the env's reachable space (``sample_state``) and rendered, with a larger budget; an env that
cannot draw an arbitrary state (third-party envs) gets far goals from the recordings instead: the
frame at a random step of another held-out episode (``--far-min-distance``: at least that far in
the success distance). A pair (or far goal) whose start already meets its goal is replaced by a
fresh draw, and counted (``protocol.solved_at_start_redrawn``): a success in 0 steps says nothing
of a policy.

Starts are restored with ``reset(options={"state": ...})`` when the env supports it (all
built-in envs); otherwise (third-party envs) by resetting with the episode's recorded seed
and replaying its recorded actions up to ``t``. The episodes are drawn before any is played
(:mod:`worldjepa.eval.episodes`), then played here or in worker processes
(:mod:`worldjepa.eval.workers`), each recorded as it ends (:mod:`worldjepa.eval.journal`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .._version import __version__
from ..config import to_dict
from ..configs import EvalConfig
from ..errors import ConfigError, WorldJepaError
from .episodes import Episode, draw_episodes, draw_pairs, restore_start
from .judge import Judge

__all__ = ["EvalConfig", "Episode", "REFERENCE_POLICIES", "Setting", "check_policy", "draw_episodes", "draw_pairs",
           "make_policy", "restore_start", "run_episode", "run_protocol"]

REFERENCE_POLICIES = ("random", "oracle", "straight", "replay")
# 2: format, dataset, checkpoints, redrawn pairs; 3: each episode's randomness seeded by its index
RESULTS_FORMAT, RESULTS_VERSION = "worldjepa-eval-results", 3


def make_policy(cfg: EvalConfig, env: Any) -> Any:
    from pathlib import Path

    from .policies import OraclePolicy, RandomGoalPolicy, ReplayPolicy, StraightLinePolicy

    if cfg.policy == "random":
        return RandomGoalPolicy(env.action_spec, cfg.seed)
    if cfg.policy == "oracle":
        return OraclePolicy(env)
    if cfg.policy == "straight":
        return StraightLinePolicy(env)
    if cfg.policy == "replay":
        if cfg.far:
            raise ConfigError("the replay policy has no recorded actions toward far goals")
        return ReplayPolicy(env.action_spec.dim)
    runs = cfg.policy.split("+") if not Path(cfg.policy).exists() else [cfg.policy]
    for run in runs:
        if not Path(run).exists():
            raise ConfigError(f"policy {run!r} is neither one of {', '.join(REFERENCE_POLICIES)} nor a run directory")
    from ..agent import Agent

    return Agent.load(runs if len(runs) > 1 else runs[0], env_id=env.env_id, config=cfg.agent)


def checkpoint_identity(policy: Any) -> list[dict[str, Any]]:
    """What a learned policy was loaded from: per model (one per ensemble member), the checkpoint
    file (``None`` for a model built in memory), its training step, and ``weights_sha256``, 16
    hex digits of a SHA-256 over its weights (:func:`~worldjepa.world_model.model_fingerprint`,
    whatever file they came from). Empty for reference policies."""
    models = getattr(policy, "models", None)
    if not models:
        return []
    from ..checkpoint import read_meta
    from ..world_model import model_fingerprint

    sources = list(getattr(policy, "sources", None) or [None] * len(models))
    metas = [read_meta(src) if src else (getattr(policy, "meta", None) or {}) if i == 0 else {}
             for i, src in enumerate(sources)]
    return [{"path": src, "step": meta.get("step"), "weights_sha256": model_fingerprint(m)}
            for src, meta, m in zip(sources, metas, models)]


def check_policy(policy: Any, env_id: str, action_dim: int) -> None:
    """Refuse a policy whose checkpoint (``policy.meta``, as an :class:`~worldjepa.Agent` has)
    was trained on another env or action space: it would be scored without a word."""
    from ..checkpoint import check_compatible

    meta = getattr(policy, "meta", None)
    if isinstance(meta, dict):
        check_compatible(meta, env_id=env_id, action_dim=action_dim, where="the policy's checkpoint")


def run_episode(env: Any, policy: Any, frame: np.ndarray, extras: dict[str, Any], budget: int,
                judge: Callable[[Any, Any], tuple[bool, float]] | None = None, goal_state: Any = None,
                on_step: Callable[[int, np.ndarray, Any, np.ndarray, dict[str, Any]], None] | None = None,
                ) -> dict[str, Any]:
    """The one episode loop: ``policy`` acts from ``frame`` until ``judge(state, goal_state)``
    says success, the env ends the episode, or ``budget`` steps pass. ``on_step(step, before,
    action, after, extras)`` is called after each env step. Returns ``success`` (``None``
    without a judge), ``steps`` and ``final_distance``."""
    key = getattr(judge, "key", lambda: "state")()
    success, dist = judge(extras[key], goal_state) if judge is not None else (False, None)
    steps = 0
    while not success and steps < budget:
        action = policy.act(frame, state=extras.get("state"), extras=extras)
        before = frame
        spec = env.action_spec
        frame, extras, done = env.step(spec.encode(action) if spec.kind == "discrete" and np.ndim(action) == 0
                                       else action)  # a discrete env's action as an int, or one-hot
        steps += 1
        if judge is not None:
            success, dist = judge(extras[key], goal_state)
        if on_step is not None:
            on_step(steps, before, action, frame, extras)
        if done:
            break
    return {"success": bool(success) if judge is not None else None, "steps": steps, "final_distance": dist}


class Setting:
    """What every episode of an evaluation shares: the dataset, a fresh env, the judge and the
    policy (one per process when episodes run in workers)."""

    def __init__(self, cfg: EvalConfig, policy: Any = None) -> None:
        from ..data.dataset import Dataset
        from ..envs.adapter import make_env

        self.cfg = cfg
        self.ds = Dataset(cfg.data)
        self.ds.check()  # starts and goals come from it: NaN states or changed bytes are refused here
        if cfg.env and cfg.env != self.ds.env_id:
            raise ConfigError(f"--env {cfg.env} does not match the dataset's env {self.ds.env_id}")
        self.env = make_env(self.ds.env_id, self.ds.frame_size, cfg.env_module or None, **self.ds.env_kwargs)
        self.has_state = "state" in self.ds.extras
        self.restore = self.has_state and self.env.builtin
        u = self.env.unwrapped  # far goals drawn from the env's reachable space, or else from the recordings
        self.sampled = self.restore and hasattr(u, "sample_state") and hasattr(u, "render_state")
        self.judge = Judge(self.env, cfg, self.has_state, {k: v for k, v in self.ds.shapes.items() if k in self.ds.extras})
        if self.judge.key() not in self.ds.extras:
            raise WorldJepaError(f"{cfg.data} has no '{self.judge.key()}' extras to judge success with")
        if policy is None:
            policy = make_policy(cfg, self.env)
        else:  # a policy built in Python: the same check as a run named on the command line
            check_policy(policy, self.ds.env_id, self.env.action_spec.dim)
        self.policy = policy
        meta = getattr(policy, "meta", None) or {}
        self.label = Path(cfg.policy).name + (f" @{meta['step']}" if "step" in meta else "")  # GIF titles

    def close(self) -> None:
        self.env.close()
        self.ds.close()

    def play(self, spec: Episode, film: bool = False) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Run one episode: its record, and (``film``) its frames, observation beside goal."""
        from .media import side_by_side

        ds, key, k = self.ds, self.judge.key(), self.cfg.goal_offset
        ep, e, t = ds.episode(spec.episode), spec.episode, spec.start
        frame, extras = restore_start(self.env, ep, t, self.restore)
        if spec.goal_frame is None:
            goal_state, goal_frame = ep[key][t + k], ep["frames"][t + k]
            goal_extras = {name: ep[name][t + k] for name in ds.extras if name in ep}
        else:
            goal_state, goal_frame, goal_extras = spec.goal_state, spec.goal_frame, spec.goal_extras
        if hasattr(self.policy, "reseed"):  # its randomness a function of the pair: any order, any worker
            self.policy.reseed(spec.index)
        self.policy.reset(goal_frame, goal_state=goal_state if self.has_state else None, goal_extras=goal_extras,
                          recorded_actions=ep["actions"][t:t + k])
        frames: list[np.ndarray] = []
        seen = [frame]  # the latest observation
        scale = max(2, 128 // goal_frame.shape[0])  # room for the title
        head = f"{self.label} | pair {spec.index}"

        def on_step(step: int, before: np.ndarray, action: Any, after: np.ndarray, extras: dict[str, Any]) -> None:
            seen[0] = after
            frames.append(side_by_side([after, goal_frame], ["obs", "goal"], scale,
                                       title=f"{head} | step {step}/{spec.budget}"))

        record = run_episode(self.env, self.policy, frame, extras, spec.budget, self.judge, goal_state,
                             on_step if film else None)
        if film:  # the outcome, held for half a second
            outcome = {True: f"SUCCESS in {record['steps']} steps", False: "failure", None: "done"}[record["success"]]
            frames += [side_by_side([seen[0], goal_frame], ["obs", "goal"], scale, title=f"{head} | {outcome}")] * 5
        extra = dict(spec.extra)
        extra.update(self.policy.episode_info() if hasattr(self.policy, "episode_info") else {})  # e.g. the memory's
        if key == "state":  # where it started and what it aimed at, for breakdowns (same room, other room)
            extra.update(start_state=np.asarray(ep["state"][t]).tolist(), goal_state=np.asarray(goal_state).tolist())
        return {"episode": e, "start": t, **record, **extra}, frames  # (e, t): a far goal may have moved the start


def run_protocol(cfg: EvalConfig, policy: Any = None, progress: bool | None = None,
                 journal: Any = None, keep_workers: bool = False, name: str | None = None) -> dict[str, Any]:
    """Evaluate ``policy`` (or the one named by ``cfg.policy``); returns summary + records.
    ``progress`` (default: ``cfg.progress``) shows a progress bar. ``cfg.workers`` > 1 runs the
    episodes in that many processes, each with its own env and policy (a named one: a Python
    object is not sent to other processes); the records are the same whatever the number, each
    episode's randomness being fixed by its index (``policy.reseed(index)`` where the policy has
    it). ``journal``: a :class:`~worldjepa.eval.journal.PolicyJournal` that records each episode
    as it finishes and supplies the ones a previous, interrupted run finished (not run again).
    ``keep_workers`` leaves the worker processes running for the next evaluation of the same
    settings (end them with :func:`worldjepa.eval.workers.close_pools`). ``name`` labels the progress
    (default: ``cfg.policy``; the CLI gives the policy as typed, its options included)."""
    from ..metrics import summarize
    from ..progress import Progress
    from .media import save_gif
    from .workers import close_pools, run_episodes

    progress = cfg.progress if progress is None else progress
    if cfg.threads > 0:
        import torch

        torch.set_num_threads(cfg.threads)
    if policy is not None and cfg.workers > 1:
        raise ConfigError(f"--workers {cfg.workers} rebuilds the policy in each worker from cfg.policy (a reference "
                          "policy or a run directory); a policy object built in Python runs with workers=1")
    setting = Setting(cfg, policy)
    policy, ds = setting.policy, setting.ds
    specs, redrawn = draw_episodes(setting, cfg)
    done = journal.done(specs) if journal is not None else {}
    router = getattr(policy, "router", None)
    if router is not None and getattr(router, "learn", False) and (cfg.workers > 1 or done):
        raise ConfigError("this policy's memory learns from one episode to the next (route_learn): its episodes "
                          "cannot be split across workers or resumed; pass route_learn=false, or --workers 1 "
                          "without --resume")
    t0 = time.time()
    bar = Progress(len(specs), f"eval {name or cfg.policy}", "episode", initial=len(done), enabled=progress)
    wins = sum(bool(r["success"]) for r in done.values())

    def finished(i: int, record: dict[str, Any]) -> None:
        nonlocal wins
        if journal is not None:
            journal.add(i, record)
        wins += bool(record["success"])
        n = bar.n + 1
        bar.update(1, success=f"{wins}/{n} ({100 * wins / n:.0f}%)")

    todo = [s for s in specs if s.index not in done]
    played, gif_frames = run_episodes(setting, cfg, todo, finished)
    if not keep_workers:
        close_pools()
    bar.close()
    records = [done[s.index] if s.index in done else played[s.index] for s in specs]
    dataset, env_id, sampled, restore = ds.fingerprint(), ds.env_id, setting.sampled, setting.restore
    setting.close()
    summary = summarize(records)
    summary["seconds"] = time.time() - t0
    result = {"format": RESULTS_FORMAT, "format_version": RESULTS_VERSION, "library_version": __version__,
              "summary": summary, "config": to_dict(cfg), "env_id": env_id, "dataset": dataset,
              "checkpoints": checkpoint_identity(policy), "records": records,
              "protocol": {"goal_offset": cfg.goal_offset, "budget": cfg.far_budget if cfg.far else cfg.budget,
                           "split": cfg.split, "far": cfg.far, "far_min_steps": cfg.far_min_steps,
                           "far_budget_factor": cfg.far_budget_factor, "far_min_distance": cfg.far_min_distance,
                           "far_goals": ("sampled" if sampled else "recorded") if cfg.far else None,
                           "restore": "state" if restore else "replay of recorded actions",
                           "solved_at_start_redrawn": redrawn, "episode_seeding": "per pair"}}
    if cfg.gif and gif_frames:
        save_gif(cfg.gif, gif_frames)
    return result
