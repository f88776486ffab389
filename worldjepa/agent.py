"""A trained world model + a planner + MPC = a goal-conditioned policy for any Gymnasium loop.

    agent = worldjepa.Agent.load("runs/tworoom", planner="cem", samples=300, iterations=30)
    agent.reset(goal_frame)          # (H, W, 3) uint8, any size
    action = agent.act(frame)        # np.ndarray in the env's action space (int when discrete)

With frame-skip ``k`` the planner searches macro-actions of ``k * A`` values (one per model
step); the agent returns their ``k`` sub-actions on successive :meth:`Agent.act` calls and
encodes a new observation at every macro-step boundary. It replans every ``replan_every``
macro-steps, warm-starting from the previous plan shifted (:class:`~worldjepa.planning.MPC`).
The cost is the latent MSE to the goal embedding summed along the imagined path (the
final-step-only cost never commits; see ANCHORS.md). The predictor is conditioned on the last
``history`` observed embeddings and the macro-actions executed between them.

Frames: (H, W, 3) uint8 of any size are resized to the checkpoint's frame size. (H, W, 4)
frames are taken as RGBA and their alpha is dropped (some Gymnasium renderers return RGBA);
any other shape raises :class:`~worldjepa.errors.WorldJepaError`. Float frames in [0, 1] or
[0, 255] are converted to uint8.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import WorldJepaError

logger = logging.getLogger(__name__)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[Any, dict[str, Any]]:
    """``(WorldModel in eval mode, meta)`` from a checkpoint file or run directory."""
    from .config import from_dict
    from .errors import CheckpointError
    from .training import checkpoint as ckpt
    from .world_model import ModelConfig, build_world_model

    tensors, meta = ckpt.load(path)
    if "model" not in meta:
        raise CheckpointError(f"{path} is a worldjepa checkpoint without a world model (no 'model' config)")
    model = build_world_model(from_dict(ModelConfig, meta["model"]))
    weights = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit its model config: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), meta


def check_frame(frame: Any, what: str) -> np.ndarray:
    """A frame as (H, W, 3) uint8, or a clear error (RGBA loses its alpha; floats are scaled)."""
    arr = np.asarray(frame)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise WorldJepaError(f"{what} must be an (H, W, 3) RGB frame (or (H, W, 4) RGBA), got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind not in "biuf" or not np.all(np.isfinite(arr)):
            raise WorldJepaError(f"{what} must hold finite numbers, got dtype {arr.dtype}")
        scale = 255.0 if arr.dtype.kind == "f" and arr.max() <= 1.0 else 1.0
        arr = np.clip(arr * scale, 0, 255).astype(np.uint8)
    return arr[..., :3]


def _gather(info: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Extras from a policy call's keyword arguments: ``{prefix}extras={...}`` plus any
    ``{prefix}NAME=value`` (``goal_state=s`` -> ``{"state": s}``); ``None`` values are skipped."""
    out = dict(info.get(f"{prefix}extras") or {})
    out.update({k[len(prefix):]: v for k, v in info.items()
                if k.startswith(prefix) and k != f"{prefix}extras" and v is not None})
    return out


@dataclass
class _Member:
    """One world model of the agent, with what it has seen in its own latent space."""

    model: Any
    cost_scale: torch.Tensor | None = None  # (D,) per-dimension scale of the latent in the cost
    goal: torch.Tensor | None = None  # (1, D)
    z_hist: list[torch.Tensor] = field(default_factory=list)  # (D,) embeddings at macro-step boundaries
    seen: dict[int, torch.Tensor] = field(default_factory=dict)  # env step -> embedding, the last (history-1)*k steps


class Agent:
    """Goal-conditioned policy (``worldjepa.protocols.Policy``) from a world model and a planner.

    Args:
        model: a :class:`~worldjepa.world_model.WorldModel` (put in eval mode here), or a list
            of them: an **ensemble** whose members (e.g. runs trained with other seeds) each
            embed the observations and the goal in their own latent space and predict there;
            a candidate's cost is the mean of the members' costs. They must share the env,
            frame-skip, history and action space; the first one is ``agent.model``.
        meta: the checkpoint metadata (``action_space``, ``frame_size``, ``env_id``) of the
            first model (the others' must agree: :meth:`load` checks it).
        planner: a name in ``worldjepa.planning.PLANNERS`` (cem, icem, mppi, gd, cem_gd).
        horizon: macro-steps per plan (5 = 25 env steps at frame-skip 5).
        replan_every: macro-steps executed from each plan before replanning.
        act_steps: env steps executed from each plan before replanning (default: the plan's
            first ``replan_every`` macro-steps, ``k * replan_every``). A divisor of the
            frame-skip ``k`` below it (with ``replan_every=1``) replans *within* a macro-step:
            ``act_steps=1`` observes and replans at every env step, from the embeddings ``k``,
            ``2k``, ... env steps back (the predictor is trained on windows that start at any
            frame), the warm start shifted by that many env steps. ``k / act_steps`` times
            the planning per episode.
        metric, reduce: the latent cost (see :func:`~worldjepa.planning.latent_cost`).
        final_weight: with ``reduce="sum"``/``"mean_path"``, the weight of the last step
            against 1 for each earlier one: the path term says which first action gets there
            soonest, a heavier last step says where the plan must end (1 = a plain sum).
        proprio_weight: weight of the proprioceptive part of the latent in the cost (models
            trained with ``proprio``; 1 = as trained, 0 = the planner ignores how far the
            agent's own body is from the goal frame's, which success tests often do too: Push-T
            judges the block, not the pusher).
        keypoint_weight: weight of the encoder's keypoint coordinates in the cost, against 1
            for each other latent entry (models whose latent *is* the encoder output: a CNN with
            ``keypoints`` and no projector, ``projector_layers=0``). Keypoints move in proportion
            to what they follow, where the other features saturate once it is far off.
        warm_start: start each plan from the previous one, shifted.
        seed: the planner's seed (same seed, same observations -> same actions).
        **planner_kwargs: e.g. ``samples=300, iterations=30, elites=30``.
    """

    def __init__(self, model: Any, meta: dict[str, Any], planner: str = "cem", *, horizon: int = 5,
                 replan_every: int = 1, metric: str = "mse", reduce: str = "sum", warm_start: bool = True,
                 seed: int = 0, proprio_weight: float = 1.0, final_weight: float = 1.0,
                 keypoint_weight: float = 1.0, act_steps: int | None = None, **planner_kwargs: Any) -> None:
        from typing import get_args

        from .envs.adapter import ActionSpec
        from .planning import MPC, make_planner
        from .planning.cost import Metric, Reduce

        models = list(model) if isinstance(model, (list, tuple)) else [model]
        if not models:
            raise WorldJepaError("an Agent needs at least one world model")
        # gradient planners differentiate w.r.t. actions only
        self.members = [_Member(m.eval().requires_grad_(False)) for m in models]
        model = self.model
        self.meta = meta
        self.spec = ActionSpec.from_dict(meta["action_space"])
        self.frame_size = int(meta["frame_size"])
        self.k, self.history = int(model.frameskip), int(model.history)
        for i, m in enumerate(models[1:], 1):
            if (int(m.frameskip), int(m.history), int(m.action_dim)) != (self.k, self.history, int(model.action_dim)):
                raise WorldJepaError(f"ensemble member {i} has frame-skip {m.frameskip}, history {m.history}, action "
                                     f"size {m.action_dim}; member 0 has {self.k}, {self.history}, {model.action_dim}")
        self.horizon = horizon
        self.act_steps = self.k * replan_every if act_steps is None else int(act_steps)
        # sub-step replanning: the planner searches H*k env actions of A values (the same numbers
        # as H macro-actions of k*A, in the same order), so MPC can shift them by env steps
        self.sub_step = self.act_steps != self.k * replan_every
        if self.sub_step and (replan_every != 1 or not 1 <= self.act_steps < self.k or self.k % self.act_steps):
            raise WorldJepaError(f"act_steps (env steps executed from each plan) must divide the frame-skip {self.k} "
                                 f"and be below it, with replan_every=1 (or be left out: {self.k * replan_every} "
                                 f"here); got act_steps={act_steps}, replan_every={replan_every}")
        rep = 1 if self.sub_step else self.k
        low = torch.tensor(self.spec.low, dtype=torch.float32).repeat(rep)  # (k*A,), or (A,) for sub-steps
        high = torch.tensor(self.spec.high, dtype=torch.float32).repeat(rep)
        plan_h = horizon * self.k if self.sub_step else horizon
        self.device = next(model.parameters()).device
        try:
            self.planner = make_planner(planner, low=low, high=high, horizon=plan_h, seed=seed, **planner_kwargs)
        except (TypeError, ValueError) as e:
            raise WorldJepaError(f"planner {planner!r}: {e}") from None
        if metric not in get_args(Metric) or reduce not in get_args(Reduce):
            raise WorldJepaError(f"cost: metric must be one of {get_args(Metric)} and reduce one of "
                                 f"{get_args(Reduce)}, got {metric!r}, {reduce!r}")
        if self.sub_step:
            self.mpc = MPC(self.planner, plan_h, self.spec.dim, low, high, self.act_steps, warm_start)
        else:
            self.mpc = MPC(self.planner, horizon, self.k * self.spec.dim, low, high, replan_every, warm_start)
        self.metric, self.reduce = metric, reduce
        if not final_weight >= 0:
            raise WorldJepaError(f"final_weight must be >= 0, got {final_weight}")
        if final_weight != 1.0 and reduce == "final":
            raise WorldJepaError("final_weight weighs the last step of a path cost: use it with reduce='sum' "
                                 "or 'mean_path', not 'final'")
        self.path_weights: torch.Tensor | None = None
        if final_weight != 1.0:
            self.path_weights = torch.ones(horizon, device=self.device)
            self.path_weights[-1] = final_weight
        if not proprio_weight >= 0:
            raise WorldJepaError(f"proprio_weight must be >= 0, got {proprio_weight}")
        if not keypoint_weight >= 0:
            raise WorldJepaError(f"keypoint_weight must be >= 0, got {keypoint_weight}")
        # per-dimension scale of the latent in the cost: 1 by default; a part weighted w gets
        # sqrt(w) under MSE (w under L1), so that it weighs w in the mean
        power = 0.5 if metric == "mse" else 1.0
        for i, mb in enumerate(self.members):
            m, parts = mb.model, []
            if proprio_weight != 1.0 and m.proprio:
                parts.append((slice(m.visual_dim, m.latent_dim), proprio_weight))
            if keypoint_weight != 1.0:
                n_kp = int(getattr(m.encoder, "keypoints", 0))
                if not n_kp or getattr(m.projector, "layers", None) != 0:
                    raise WorldJepaError(
                        f"keypoint_weight needs a latent that holds the encoder's keypoints (a cnn encoder "
                        f"trained with keypoints and --projector-layers 0); model {i} has "
                        f"{n_kp} keypoints and {getattr(m.projector, 'layers', '?')} projector layers")
                parts.append((slice(m.visual_dim - 2 * n_kp, m.visual_dim), keypoint_weight))
            if parts:
                mb.cost_scale = torch.ones(m.latent_dim, device=self.device)
                for where, w in parts:
                    mb.cost_scale[where] = float(w) ** power
        self.imagined: torch.Tensor | None = None  # (H, D) embeddings the last plan expects (member 0)
        self.reset_history()

    @property
    def model(self) -> Any:
        """The (first) world model."""
        return self.members[0].model

    @property
    def goal(self) -> torch.Tensor | None:
        """``(1, D)`` the goal's embedding (the first model's), ``None`` before :meth:`reset`."""
        return self.members[0].goal

    @property
    def z_hist(self) -> list[torch.Tensor]:
        """The last ``history`` observed embeddings (the first model's), oldest first."""
        return self.members[0].z_hist

    @property
    def cost_scale(self) -> torch.Tensor | None:
        """``(D,)`` the first model's per-dimension scale of the latent in the cost (``proprio_weight``,
        ``keypoint_weight``)."""
        return self.members[0].cost_scale

    @classmethod
    def load(cls, path: str | Path | list[str | Path] | tuple[str | Path, ...], planner: str = "cem", *,
             env_id: str | None = None, device: str = "cpu", **kwargs: Any) -> "Agent":
        """An agent from a run directory or checkpoint file, or from a list of them (an
        ensemble: see the class); ``env_id`` (if given) must match every checkpoint's, and
        ensemble members must share the first one's env, frame size and action space, else
        :class:`~worldjepa.errors.CheckpointError`."""
        from .training.checkpoint import check_compatible, read_meta

        paths = list(path) if isinstance(path, (list, tuple)) else [path]
        if not paths:
            raise WorldJepaError("Agent.load needs a run directory or checkpoint (got an empty list)")
        metas = [read_meta(p) for p in paths]
        if env_id is not None:
            for p, m in zip(paths, metas):
                check_compatible(m, env_id=env_id, where=f"checkpoint {p}")
        first = metas[0]
        for p, m in zip(paths[1:], metas[1:]):
            check_compatible(m, env_id=first["env_id"], frame_size=int(first["frame_size"]),
                             action_dim=int(first["action_space"]["dim"]), where=f"ensemble member {p} (beside {paths[0]})")
        loaded = [load_checkpoint(p, device) for p in paths]
        models = [m for m, _ in loaded]
        return cls(models if len(models) > 1 else models[0], loaded[0][1], planner, **kwargs)

    def reset_history(self) -> None:
        for mb in self.members:
            mb.z_hist = []  # (D,) embeddings at the boundaries k, 2k, ... env steps back, in that member's latent
            mb.seen = {}
        self.a_hist: list[torch.Tensor] = []  # (k*A,) macro-actions executed between them
        self.queue: list[np.ndarray] = []  # (A,) sub-actions of the current macro-action
        self.executed: list[np.ndarray] = []  # (A,) encoded env actions of the last (history-1)*k steps
        self.t = 0  # env steps since reset
        self.mpc.reset()

    @torch.no_grad()
    def encode(self, frame: Any, what: str = "observation", extras: dict[str, Any] | None = None) -> torch.Tensor:
        """One frame (any size) -> its embedding ``(D,)`` (the first model's); ``extras``
        carries the proprioceptive values of a model trained with them (e.g. ``{"state": s}``)."""
        return self._encode_all(frame, what, extras)[0]

    @torch.no_grad()
    def _encode_all(self, frame: Any, what: str, extras: dict[str, Any] | None) -> list[torch.Tensor]:
        """The frame's embedding ``(D,)`` in every member's latent."""
        from .envs.adapter import resize_frame

        arr = resize_frame(check_frame(frame, what), self.frame_size)[None]  # (1, S, S, 3) uint8
        out = []
        for mb in self.members:
            p = mb.model.proprio_of(extras)
            out.append(mb.model.encode(arr, None if p is None else p[None])[0])  # (D,)
        return out

    def reset(self, goal_obs: np.ndarray, **info: Any) -> None:
        """Start an episode toward ``goal_obs`` ((H, W, 3) uint8, any size). A model trained with
        proprioception also needs the goal's values: ``goal_extras={"state": s}`` or ``goal_state=s``;
        other ``info`` is ignored."""
        extras = _gather(info, "goal_") if any(mb.model.proprio for mb in self.members) else None
        for mb, g in zip(self.members, self._encode_all(goal_obs, "goal frame", extras)):
            mb.goal = g[None]  # (1, D)
        self.reset_history()

    def _cost_fn(self) -> Any:
        costs = [self._member_cost(mb) for mb in self.members]
        cost = costs[0] if len(costs) == 1 else (lambda acts: torch.stack([c(acts) for c in costs]).mean(0))
        # MPC keeps its plans on the CPU; a model on a GPU scores them there and hands costs back
        return cost if self.device.type == "cpu" else (lambda acts: cost(acts).to(acts.device))

    def _member_cost(self, mb: _Member) -> Any:
        """One member's latent cost of candidate actions ``(1, S, H, k*A) -> (1, S)``."""
        from .planning import make_latent_cost

        z = torch.stack(mb.z_hist)[None]  # (1, Th, D)
        a = torch.stack(self.a_hist)[None] if self.a_hist else z.new_zeros(1, 0, self.k * self.spec.dim)
        scale = mb.cost_scale

        def rollout(acts: torch.Tensor) -> torch.Tensor:
            pred = mb.model.rollout(z, a, acts.to(self.device))  # (1, S, H, D)
            return pred if scale is None else pred * scale

        goal = mb.goal if scale is None else mb.goal * scale
        return make_latent_cost(rollout, goal, metric=self.metric, reduce=self.reduce,  # type: ignore[arg-type]
                                path_weights=self.path_weights)

    def act(self, obs: np.ndarray, **info: Any) -> Any:
        """The next env action for observation ``obs`` ((H, W, 3) uint8). A model trained with
        proprioception reads its values from ``info`` (``state=s``, or ``extras={"obs": o}``);
        other ``info`` is ignored.
        (Not under ``no_grad``: the planner picks its grad mode - gradient planners need autograd.)"""
        if self.goal is None:
            raise WorldJepaError("call agent.reset(goal_obs) before agent.act(obs)")
        extras = _gather(info) if any(mb.model.proprio for mb in self.members) else None
        if self.sub_step:  # plans of env actions; MPC replans every act_steps calls
            if self.t % self.act_steps == 0:
                self._observe(obs, extras)
            vec = self._mpc_act().detach().cpu().numpy()  # (A,)
        else:
            if not self.queue:  # a macro-step boundary
                self._observe(obs, extras)
                self.queue = list(self._mpc_act().detach().cpu().numpy().reshape(self.k, self.spec.dim))
            vec = self.queue.pop(0)
        action = self.spec.decode(vec)
        self.executed.append(self.spec.encode(action))  # what the env really gets (clipped / one-hot)
        self.t += 1
        return np.asarray(action) if self.spec.kind == "box" else action

    def _observe(self, obs: np.ndarray, extras: dict[str, Any] | None) -> None:
        """Encode ``obs`` (env step ``self.t``); set each member's history to the embeddings seen
        ``k``, ``2k``, ... env steps back and ``a_hist`` to the macro-actions executed between."""
        t, span = self.t, (self.history - 1) * self.k
        times = [s for s in range(t - span, t + 1, self.k) if s >= 0]  # observed: act_steps divides k
        for mb, z in zip(self.members, self._encode_all(obs, "observation", extras)):
            mb.seen = {s: y for s, y in mb.seen.items() if s >= t - span} | {t: z}
            mb.z_hist = [mb.seen[s] for s in times]
        first = t - len(self.executed)  # the env step of executed[0]
        self.a_hist = [torch.as_tensor(np.concatenate(self.executed[s - first:s - first + self.k]), device=self.device)
                       for s in times[:-1]]
        self.executed = self.executed[max(0, len(self.executed) - span):] if span else []

    def _mpc_act(self) -> torch.Tensor:
        """MPC's next action: ``(k*A,)`` a macro-action, or ``(A,)`` an env action with sub-steps."""
        shape = (self.horizon, self.k * self.spec.dim)

        def cost_factory() -> Any:  # MPC builds the cost only when it replans
            cost = self._cost_fn()
            # sub-steps: the planner's (1, S, H*k, A) candidates are the cost's (1, S, H, k*A)
            return lambda acts: cost(acts.reshape(*acts.shape[:2], *shape))

        before = self.mpc.last_result
        out = self.mpc.act(cost_factory)[0]
        if self.mpc.last_result is not before:  # a fresh plan: remember what it imagines
            self._imagine(self.mpc.last_result.actions.reshape(1, *shape))
        return out

    @torch.no_grad()
    def _imagine(self, plan: torch.Tensor) -> None:
        z = torch.stack(self.z_hist)[None]  # (1, Th, D)
        a = torch.stack(self.a_hist)[None] if self.a_hist else z.new_zeros(1, 0, self.k * self.spec.dim)
        self.imagined = self.model.rollout(z, a, plan[:, None].to(self.device))[0, 0]  # (H, D)
