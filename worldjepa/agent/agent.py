"""A trained world model + a planner + MPC = a goal-conditioned policy for any Gymnasium loop.

    agent = worldjepa.Agent.load("runs/tworoom", planner="cem", samples=300, iterations=30)
    agent.reset(goal_frame)          # (H, W, 3) uint8, any size; or set_goal(embedding)
    action = agent.act(frame)        # np.ndarray in the env's action space (int when discrete)
    z, surprise = agent.observe(frame)  # what act() does at every model step, on its own

Three parts: :class:`~worldjepa.agent.History` (the short-term memory of observed embeddings
and executed actions), :class:`~worldjepa.planning.LatentCost` (the world model's dynamics,
the history and the goal embedding as one cost function; injectable) and this thin policy.
With frame-skip ``k`` the planner searches macro-actions of ``k * A`` values (one per model
step); the agent returns their ``k`` sub-actions on successive :meth:`Agent.act` calls and
observes at every macro-step boundary. It replans every ``replan_every`` macro-steps,
warm-starting from the previous plan shifted (:class:`~worldjepa.planning.MPC`). The cost is
the latent distance to the goal summed along the imagined path (the final-step-only cost
never commits; see ANCHORS.md).

Surprise is the world model's one-step prediction error (:func:`~worldjepa.losses.prediction_error`,
MSE): how far the observed embedding is from the one predicted from the context ``k`` env
steps earlier and the macro-action executed since (the first model's, for an ensemble).

Frames: (H, W, 3) uint8 of any size are resized to the checkpoint's frame size. (H, W, 4)
frames are taken as RGBA and their alpha is dropped (some Gymnasium renderers return RGBA);
any other shape raises :class:`~worldjepa.errors.WorldJepaError`. Float frames in [0, 1] or
[0, 255] are converted to uint8.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..configs import AgentConfig
from ..errors import WorldJepaError
from ..protocols import CostFn
from .history import History
from .inputs import _gather, _is_embedding, check_frame
from .options import agent_config, cost_scale

logger = logging.getLogger(__name__)


class Agent:
    """Goal-conditioned policy (``worldjepa.protocols.Policy``) from a world model and a planner.

    Args:
        model: a :class:`~worldjepa.world_model.WorldModel` (put in eval mode here), or a list
            of them: an **ensemble** whose members (e.g. runs trained with other seeds) each
            embed the observations and the goal in their own latent space and predict there;
            a candidate's cost is the mean of the members' costs (plus ``disagreement`` times
            their standard deviation). They must share the env, frame-skip, history and action
            space (and, with a memory, one latent); the first one is ``agent.model``.
        meta: the checkpoint metadata (``action_space``, ``frame_size``, ``env_id``) of the
            first model (the others' must agree: :meth:`load` checks it).
        planner: a planner name (``cem``, ``icem``, ``mppi``, ``gd``, ``cem_gd``), overriding
            ``config.planner.name``.
        config: an :class:`~worldjepa.configs.AgentConfig` (every option, with its meaning);
        **options: any of its fields by name, flat (``horizon=8``, ``samples=500``,
            ``seed=1``, ``act_steps=1``, ``final_weight=5``, ...), overriding ``config``.
        cost: optional factory ``cost(agent) -> CostFn`` that replaces the latent cost of each
            new plan (e.g. a simulator as the predictor, for a planner ceiling); it is called
            after the observation, so ``agent.history`` and ``agent.goal`` are current. It
            receives candidates ``(1, S, H, k*A)``.
    """

    def __init__(self, model: Any, meta: dict[str, Any], planner: str | None = None, *,
                 config: AgentConfig | None = None, cost: Callable[["Agent"], CostFn] | None = None,
                 memory: Any = None, **options: Any) -> None:
        from ..envs.adapter import ActionSpec
        from ..planning import MPC, make_planner

        models = list(model) if isinstance(model, (list, tuple)) else [model]
        if not models:
            raise WorldJepaError("an Agent needs at least one world model")
        for m in models:
            if getattr(m, "action_free", False):
                raise WorldJepaError("this world model was trained action-free (--action-free): its predictions do "
                                     "not depend on actions, so it cannot plan; fine-tune it with actions first: "
                                     "worldjepa train --init-from RUN --data DATA --out RUN2")
        self.models = [m.eval().requires_grad_(False) for m in models]  # gradient planners need the actions' only
        self.config = cfg = agent_config(config, planner, **options)
        self.meta, self.cost_factory = meta, cost
        self.spec = ActionSpec.from_dict(meta["action_space"])
        self.frame_size = int(meta["frame_size"])
        self.k, self.history_len = int(self.model.frameskip), int(self.model.history)
        for i, m in enumerate(models[1:], 1):
            if (int(m.frameskip), int(m.history), int(m.action_dim)) != (self.k, self.history_len,
                                                                         int(self.model.action_dim)):
                raise WorldJepaError(f"ensemble member {i} has frame-skip {m.frameskip}, history {m.history}, action "
                                     f"size {m.action_dim}; member 0 has {self.k}, {self.history_len}, "
                                     f"{self.model.action_dim}")
        if cfg.disagreement and len(models) < 2:
            raise WorldJepaError("disagreement weighs how an ensemble's members disagree: give two or more runs (A+B)")
        self.horizon, replan_every = cfg.horizon, cfg.replan_every
        self.act_steps = self.k * replan_every if cfg.act_steps is None else int(cfg.act_steps)
        # sub-step replanning: the planner searches H*k env actions of A values (the same numbers
        # as H macro-actions of k*A, in the same order), so MPC can shift them by env steps
        self.sub_step = self.act_steps != self.k * replan_every
        if self.sub_step and (replan_every != 1 or not 1 <= self.act_steps < self.k or self.k % self.act_steps):
            raise WorldJepaError(f"act_steps (env steps executed from each plan) must divide the frame-skip {self.k} "
                                 f"and be below it, with replan_every=1 (or be left out: {self.k * replan_every} "
                                 f"here); got act_steps={cfg.act_steps}, replan_every={replan_every}")
        rep = 1 if self.sub_step else self.k
        low = torch.tensor(self.spec.low, dtype=torch.float32).repeat(rep)  # (k*A,), or (A,) for sub-steps
        high = torch.tensor(self.spec.high, dtype=torch.float32).repeat(rep)
        plan_h = self.horizon * self.k if self.sub_step else self.horizon
        self.device = next(self.model.parameters()).device
        try:
            self.planner = make_planner(cfg.planner.name, low=low, high=high, horizon=plan_h, **cfg.planner.kwargs())
        except (TypeError, ValueError) as e:
            raise WorldJepaError(f"planner {cfg.planner.name!r}: {e}") from None
        self.mpc = MPC(self.planner, plan_h, rep * self.spec.dim, low, high,  # shifts by env steps with sub-steps
                       self.act_steps if self.sub_step else replan_every, cfg.warm_start)
        self.path_weights: Tensor | None = None
        if cfg.final_weight != 1.0:
            self.path_weights = torch.ones(self.horizon, device=self.device)
            self.path_weights[-1] = cfg.final_weight
        self.cost_scales = [cost_scale(m, i, cfg, self.device) for i, m in enumerate(self.models)]
        self.goals: list[Tensor | None] = [None] * len(self.models)  # (1, D) per member
        self.history = History(self.k, self.history_len, self.k * self.spec.dim, len(self.models))
        self.imagined: Tensor | None = None  # (H, D) embeddings the last plan expects (member 0)
        self.surprise: float = float("nan")  # of the last observation
        self.final_goal: Tensor | None = None  # (1, D) the goal of the episode (goals[0] may be a subgoal)
        self.router = self._router(memory if memory is not None else cfg.memory)
        self.sources: list[str | None] = [None] * len(self.models)  # checkpoint files (set by load)
        self.reset_history()

    # ----------------------------------------------------------------------- properties
    @property
    def model(self) -> Any:
        """The (first) world model."""
        return self.models[0]

    @property
    def goal(self) -> Tensor | None:
        """``(1, D)`` the goal's embedding (the first model's), ``None`` before :meth:`reset`."""
        return self.goals[0]

    @property
    def cost_scale(self) -> Tensor | None:
        """``(D,)`` the first model's per-dimension scale of the latent in the cost (``proprio_weight``,
        ``keypoint_weight``), ``None`` when every dimension weighs 1."""
        return self.cost_scales[0]

    @property
    def t(self) -> int:
        """Env steps since :meth:`reset`."""
        return self.history.t

    @property
    def z_hist(self) -> list[Tensor]:
        """The context's observed embeddings ``(D,)`` (the first model's), oldest first."""
        return self.history.z[0]

    @property
    def a_hist(self) -> list[Tensor]:
        """The context's macro-actions ``(k*A,)`` executed between them."""
        return self.history.a

    @classmethod
    def load(cls, path: str | Path | list[str | Path] | tuple[str | Path, ...], planner: str | None = None, *,
             env_id: str | None = None, device: str | None = None, config: AgentConfig | None = None,
             **options: Any) -> "Agent":
        """An agent from a run directory or checkpoint file, or from a list of them (an
        ensemble: see the class); ``env_id`` (if given) must match every checkpoint's, and
        ensemble members must share the first one's env, frame size and action space, else
        :class:`~worldjepa.errors.CheckpointError`. ``device`` overrides ``config.device``."""
        from ..checkpoint import check_compatible, read_meta, resolve
        from ..utils import pick_device
        from ..world_model import load_world_model

        cfg = agent_config(config, planner, **options, **({"device": device} if device else {}))
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
        where = pick_device(cfg.device)
        loaded = [load_world_model(p, where) for p in paths]
        models = [m for m, _ in loaded]
        agent = cls(models if len(models) > 1 else models[0], loaded[0][1], config=cfg)
        agent.sources = [str(resolve(p).resolve()) for p in paths]
        return agent

    def reseed(self, episode: int) -> None:
        """Seed the planner for evaluation episode ``episode`` (from the planner's seed and the
        index), so that an episode plans the same whatever ran before it, in any process."""
        from ..utils import derive_seed

        self.planner.seed = derive_seed(self.config.planner.seed, episode)
        self.planner.reset_seed()

    # ------------------------------------------------------------------ goal and memory
    def reset_history(self) -> None:
        """Forget what was seen and done (the goal stays)."""
        self.history.reset()
        self.queue: list[np.ndarray] = []  # (A,) sub-actions of the current macro-action
        self.mpc.reset()
        if self.router is not None:
            self.router.reset()

    def _router(self, memory: Any) -> Any:
        """A :class:`~worldjepa.memory.Router` from a memory file, a map or a router (or ``None``)."""
        from ..memory.reasoning import as_router
        from ..world_model import latent_fingerprint

        if memory not in (None, "") and len({latent_fingerprint(m) for m in self.models}) > 1:
            raise WorldJepaError("a long-term memory is built in one latent: an ensemble uses it only if its members "
                                 "share it (runs of `worldjepa train --init-from RUN --predictor-only`)")
        return as_router(memory, self.model, lookahead=self.config.route_lookahead, stall=self.config.route_stall,
                         learn=self.config.route_learn, env_id=self.meta.get("env_id"))

    def episode_info(self) -> dict[str, Any]:
        """What the episode's reasoning did (route found, fallback to flat MPC, replans), for eval's records."""
        return {"memory": dict(self.router.info)} if self.router is not None else {}

    def reset(self, goal_obs: np.ndarray, **info: Any) -> None:
        """Start an episode toward ``goal_obs`` ((H, W, 3) uint8, any size; or an embedding: see
        :meth:`set_goal`). A model trained with proprioception also needs the goal's values:
        ``goal_extras={"state": s}`` or ``goal_state=s``; other ``info`` is ignored."""
        self.set_goal(goal_obs, **info)
        self.reset_history()

    def set_goal(self, goal: Any, **info: Any) -> None:
        """Aim at ``goal`` from now on, keeping the history (a new subgoal mid-episode): a frame
        ((H, W, 3) uint8, any size; proprioception as in :meth:`reset`), or an embedding ``(D,)``
        or ``(1, D)`` in the model's latent (for an ensemble, a list of one per member)."""
        if isinstance(goal, (list, tuple)) or _is_embedding(goal):
            zs = list(goal) if isinstance(goal, (list, tuple)) else [goal]
            if len(zs) != len(self.models):
                raise WorldJepaError(f"set_goal: {len(zs)} goal embedding(s) for {len(self.models)} model(s)")
            for i, (m, z) in enumerate(zip(self.models, zs)):
                z = torch.as_tensor(z, dtype=torch.float32, device=self.device).reshape(1, -1)
                if z.shape[1] != m.latent_dim or not torch.isfinite(z).all():
                    raise WorldJepaError(f"goal embedding for model {i} must hold {m.latent_dim} finite values, got "
                                         f"shape {tuple(np.shape(zs[i]))}")
                self.goals[i] = z
        else:
            extras = _gather(info, "goal_") if any(m.proprio for m in self.models) else None
            self.goals = [g[None] for g in self._encode_all(goal, "goal frame", extras)]  # (1, D) each
        self.final_goal = self.goals[0]
        if self.router is not None:
            self.router.reset()  # a new goal: a new route

    @torch.no_grad()
    def encode(self, frame: Any, what: str = "observation", extras: dict[str, Any] | None = None) -> Tensor:
        """One frame (any size) -> its embedding ``(D,)`` (the first model's); ``extras``
        carries the proprioceptive values of a model trained with them (e.g. ``{"state": s}``)."""
        return self._encode_all(frame, what, extras)[0]

    @torch.no_grad()
    def _encode_all(self, frame: Any, what: str, extras: dict[str, Any] | None) -> list[Tensor]:
        """The frame's embedding ``(D,)`` in every member's latent."""
        from ..envs.adapter import resize_frame

        arr = resize_frame(check_frame(frame, what), self.frame_size)[None]  # (1, S, S, 3) uint8
        out = []
        for m in self.models:
            p = m.proprio_of(extras)
            out.append(m.encode(arr, None if p is None else p[None])[0])  # (D,)
        return out

    @torch.no_grad()
    def observe(self, obs: np.ndarray, **info: Any) -> tuple[Tensor, float]:
        """Take in the observation at the current env step: its embedding ``(D,)`` (the first
        model's) and its surprise, the prediction error of that embedding from the context
        ``k`` env steps earlier and the macro-action executed since (``nan`` when there is
        none, at the episode's first model step). Proprioception as in :meth:`act`."""
        extras = _gather(info) if any(m.proprio for m in self.models) else None
        zs = self._encode_all(obs, "observation", extras)
        self.surprise = float("nan")
        before = self.history.previous(0)
        if before is not None:
            from ..losses import prediction_error

            pred = self.model.rollout(*before)[0, 0, 0]  # (D,)
            self.surprise = float(prediction_error(pred, zs[0]))
        self.history.add(zs)
        return zs[0], self.surprise

    # --------------------------------------------------------------------------- acting
    def act(self, obs: np.ndarray, **info: Any) -> Any:
        """The next env action for observation ``obs`` ((H, W, 3) uint8). A model trained with
        proprioception reads its values from ``info`` (``state=s``, or ``extras={"obs": o}``);
        other ``info`` is ignored.
        (Not under ``no_grad``: the planner picks its grad mode - gradient planners need autograd.)"""
        if self.goal is None:
            raise WorldJepaError("call agent.reset(goal_obs) before agent.act(obs)")
        if self.sub_step:  # plans of env actions; MPC replans every act_steps calls
            if self.t % self.act_steps == 0:
                self._follow_route(self.observe(obs, **info)[0])
            vec = self._mpc_act().detach().cpu().numpy()  # (A,)
        else:
            if not self.queue:  # a macro-step boundary
                self._follow_route(self.observe(obs, **info)[0])
                self.queue = list(self._mpc_act().detach().cpu().numpy().reshape(self.k, self.spec.dim))
            vec = self.queue.pop(0)
        action = self.spec.decode(vec)
        self.history.record(self.spec.encode(action))  # what the env really gets (clipped / one-hot)
        return np.asarray(action) if self.spec.kind == "box" else action

    def _follow_route(self, z: Tensor) -> None:
        """With a memory: aim the planner at the route's next subgoal (or at the goal itself)."""
        if self.router is None or self.final_goal is None:
            return
        sub = self.router.next_goal(z.detach().cpu().numpy(), self.final_goal[0].detach().cpu().numpy(), self.t)
        goal = self.final_goal if sub is None else torch.as_tensor(sub, device=self.device)[None]
        self.goals = [goal] * len(self.models)  # an ensemble with a memory shares one latent

    def latent_cost(self) -> CostFn:
        """The cost of candidate macro-action sequences ``(1, S, H, k*A) -> (1, S)`` from the current
        history toward the goal: each member's :class:`~worldjepa.planning.LatentCost`, combined."""
        from ..planning import LatentCost, MeanCost

        c = self.config
        return MeanCost([LatentCost(m, self.goals[i], *self.history.context(i), metric=c.metric, reduce=c.reduce,
                                    path_weights=self.path_weights, scale=self.cost_scales[i], precision=c.precision)
                         for i, m in enumerate(self.models)], c.disagreement)

    def _mpc_act(self) -> Tensor:
        """MPC's next action: ``(k*A,)`` a macro-action, or ``(A,)`` an env action with sub-steps."""
        shape = (self.horizon, self.k * self.spec.dim)

        def cost_factory() -> CostFn:  # MPC builds the cost only when it replans
            cost = self.cost_factory(self) if self.cost_factory is not None else self.latent_cost()
            # sub-steps: the planner's (1, S, H*k, A) candidates are the cost's (1, S, H, k*A)
            return lambda acts: cost(acts.reshape(*acts.shape[:2], *shape))

        before = self.mpc.last_result
        out = self.mpc.act(cost_factory)[0]
        if self.mpc.last_result is not before:  # a fresh plan: remember what it imagines
            self._imagine(self.mpc.last_result.actions.reshape(1, *shape))
        return out

    @torch.no_grad()
    def _imagine(self, plan: Tensor) -> None:
        z, a = self.history.context(0)
        self.imagined = self.model.rollout(z, a, plan[:, None].to(self.device))[0, 0]  # (H, D)
