"""Reasoning over the map: which remembered place to aim at next, on the way to a far goal.

A :class:`Router` turns a goal too far for one plan into a sequence of near subgoals: it
localises the start and the goal in the :class:`~worldjepa.memory.graph.MemoryMap` (their
nearest landmarks), searches the cheapest route between them, and at every model step gives
the agent the embedding to plan toward: the farthest landmark on the route at most
``lookahead`` env steps ahead of where the agent is, and the goal itself on the last leg.
The agent's world-model MPC drives each leg. The route advances when the agent comes within
``reach`` (latent distance) of a landmark on it; when a leg makes no progress for ``stall``
model steps, the edge ahead is made dearer and the route is searched again from where the
agent is. A goal the map cannot reach leaves the router inactive (:attr:`Router.info`:
``fallback``): the agent then plans toward the goal directly (flat MPC), unless the memory
holds a subgoal model (:mod:`.subgoals`, ``memory build --subgoals``). That model then gives,
at every model step, the embedding a remembered path from where the agent is toward the goal
held ``lookahead`` env steps later, until it judges the goal at most ``lookahead`` steps away
(``guided`` counts the subgoals it gave).

The route joins the nearest landmarks to the agent and to the goal that are joined, among
those at most one radius farther than the nearest (each is a short leg away): a landmark the
agent has just added has edges in and none out yet, and the first of an episode edges out only.

The map is updated online as the agent moves (``learn``): what the agent observes is placed on
the map by the rule the map's edges were built with. An observation within the core of a
landmark (``core`` times the radius) is at that place; any other becomes a new landmark (the
agent is not surely at a known place; landmarks learned this way are at least ``core`` radii
from the others, so the map grows toward a denser cover, not without bound). When the agent
passes from one place to another within ``max_gap`` env steps, that move becomes an edge (or
makes an existing one cheaper, also one penalised earlier: the move did succeed). A router that found no route searches again once the map has
grown. The updates live as long as the map object (across episodes of one agent); the memory
file is not changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .graph import MemoryMap

__all__ = ["Router"]


class Router:
    """Subgoals along a route of remembered places.

    Args:
        memory_map: landmarks and the moves between them.
        lookahead: how far ahead along the route a subgoal may be, in env steps (the
            calibration in ANCHORS.md: subgoals ~10 steps apart work, far ones do not).
        stall: model steps without progress along the route before the edge ahead is
            penalised and the route searched again.
        reach: latent distance at which a landmark counts as reached (default: the map's radius).
        penalty: factor an edge's weight is multiplied by when it failed.
        max_replans: searches again at most this many times per episode, then goes flat.
        learn: update the map online from what the agent observes (:meth:`observe`).
        max_gap: with ``learn``, landmarks the agent joined within this many env steps are
            linked (default: the ``edge_steps`` the map was built with, else 10).
        core: with ``learn``, the fraction of the radius within which an observation counts as
            being at its landmark (as when the map was built).
        subgoals: a :class:`~worldjepa.memory.subgoals.SubgoalModel` that guides the agent where
            the map has no route (default: the map's own, if its memory file holds one).
    """

    def __init__(self, memory_map: MemoryMap, *, lookahead: float = 10.0, stall: int = 6,
                 reach: float | None = None, penalty: float = 4.0, max_replans: int = 10, learn: bool = False,
                 max_gap: int | None = None, core: float = 0.5, subgoals: Any = None) -> None:
        if lookahead <= 0 or stall < 1:
            raise ValueError(f"lookahead must be > 0 and stall >= 1, got {lookahead}, {stall}")
        self.map = memory_map
        self.lookahead, self.stall, self.penalty, self.max_replans = lookahead, stall, penalty, max_replans
        self.reach = float(memory_map.radius if reach is None else reach)
        self.learn, self.core = learn, core
        self.max_gap = int(max_gap if max_gap is not None else memory_map.info.get("edge_steps", 10))
        self.subgoals = subgoals if subgoals is not None else memory_map.subgoals
        self.reset()

    def reset(self) -> None:
        """Forget the route (a new episode or a new goal); edge penalties are kept: a failed
        move stays suspect for the rest of the router's life."""
        self.route: list[int] = []
        self.cum = np.zeros(0)  # (R,) env steps from route[0] to route[j]
        self.pos = 0  # index on the route of the last landmark reached
        self.target = 0  # index on the route of the current subgoal
        self.goal: np.ndarray | None = None
        self.active = False
        self._since_progress = 0
        self._trace: dict[int, int] = {}  # landmark -> the last env step the agent was at it (this episode)
        self._grown = False  # the map changed since the last search
        self.guide: np.ndarray | None = None  # the subgoal model's current subgoal (no route)
        self.info: dict[str, Any] = {"routed": False, "fallback": False, "route_nodes": 0, "route_steps": 0.0,
                                     "replans": 0, "reached": 0, "learned_landmarks": 0, "learned_edges": 0,
                                     "guided": 0}

    def observe(self, z_now: np.ndarray, step: int) -> None:
        """Place the agent's observation ``z_now`` ``(D,)`` at env step ``step`` on the map: at its
        landmark when within the core, else at a new landmark; then an edge from each landmark it
        was at within ``max_gap`` steps before, to the one it is at now (see the module docstring)."""
        z_now = np.asarray(z_now, np.float32).reshape(-1)
        here, dist = self.map.localize(z_now)
        if dist > self.core * self.map.radius:  # not surely at a known place: a new one
            here = self.map.add_landmark(z_now)
            self.info["learned_landmarks"] += 1
            self._grown = True
        self._trace = {u: s for u, s in self._trace.items() if step - s <= self.max_gap}
        for u, s in self._trace.items():
            if u != here and step > s and self.map.link(u, here, step - s):
                self.info["learned_edges"] += 1
                self._grown = True
        self._trace[here] = step

    def start(self, z_now: np.ndarray, z_goal: np.ndarray) -> bool:
        """Search a route from ``z_now`` to ``z_goal`` (embeddings ``(D,)``); False (and flat MPC)
        when the map cannot connect them."""
        self.goal = np.asarray(z_goal, np.float32).reshape(-1)
        ok = self._search(z_now)
        self.info["routed"], self.info["fallback"] = ok, not ok
        return ok

    def _search(self, z_now: np.ndarray) -> bool:
        self._grown = False
        # between the nearest places that are joined, among those at most a radius farther than
        # the nearest (a place the agent has just added has no way out yet; the first place of an
        # episode, no way in)
        ends = []
        for z in (z_now, self.goal):
            near, dist = self.map.nearby(z, k=8)
            ends.append(near[dist <= dist[0] + self.map.radius])
        found = self.map.route(*ends)
        if found is None:
            self.active = False
            return False
        self.route, cost = found
        weights = [self.map.edge_weight(u, v) for u, v in zip(self.route[:-1], self.route[1:])]
        self.cum = np.concatenate([[0.0], np.cumsum(weights)])
        self.pos, self.active, self._since_progress = 0, True, 0
        self.info.update(route_nodes=len(self.route), route_steps=float(cost))
        return True

    def subgoal(self, z_now: np.ndarray, step: int | None = None) -> np.ndarray | None:
        """The embedding ``(D,)`` to plan toward from ``z_now``, or ``None`` for the goal itself
        (the last leg, or no route). ``step`` (env steps since the episode began) lets a
        learning router update the map first."""
        z_now = np.asarray(z_now, np.float32).reshape(-1)
        if self.learn and step is not None:
            self.observe(z_now, step)
        if not self.active:
            if not (self._grown and self.goal is not None and self.info["fallback"]
                    and self.info["replans"] <= self.max_replans) or not self._search(z_now):
                return self._guided(z_now)  # no route (the map grew: searched again, in vain)
            self.info["routed"] = True
        self.guide = None
        marks = self.map.z[self.route]  # (R, D)
        dist = np.linalg.norm(marks - z_now, axis=1)
        ahead = np.flatnonzero(dist[self.pos:] < self.reach)
        new = self.pos + int(ahead.max()) if len(ahead) else self.pos  # the farthest one reached (it may skip some)
        if new > self.pos:
            self.info["reached"] += new - self.pos
            self.pos, self._since_progress = new, 0
        else:
            self._since_progress += 1
        if self._since_progress >= self.stall:
            return self._replan(z_now)
        within = np.flatnonzero(self.cum - self.cum[self.pos] <= self.lookahead)
        self.target = max(int(within.max()), min(self.pos + 1, len(self.route) - 1))
        if self.target >= len(self.route) - 1:
            return None  # the last leg: plan toward the goal itself
        return marks[self.target]

    def _guided(self, z_now: np.ndarray) -> np.ndarray | None:
        """Without a route: the subgoal model's next subgoal, ``None`` (the goal itself) when the
        goal is within ``lookahead`` steps, or when there is no model (flat MPC)."""
        self.guide = None
        if self.subgoals is None or self.goal is None:
            return None
        sub, steps = self.subgoals.propose(z_now, self.goal, self.lookahead)
        if steps <= self.lookahead:
            return None
        self.guide = sub
        self.info["guided"] += 1
        return sub

    def _replan(self, z_now: np.ndarray) -> np.ndarray | None:
        """The leg stalled: the edge ahead is made dearer and the route searched from here."""
        if self.pos + 1 < len(self.route):
            self.map.penalize(self.route[self.pos], self.route[self.pos + 1], self.penalty)
        self.info["replans"] += 1
        if self.info["replans"] > self.max_replans or not self._search(z_now):
            self.active = False
            self.info["fallback"] = True
            return self._guided(z_now)
        return self.subgoal(z_now)

    def next_goal(self, z_now: np.ndarray, z_goal: np.ndarray, step: int) -> np.ndarray | None:
        """At a model step of an episode toward ``z_goal``: search the route the first time, then
        the subgoal to plan toward (``None``: the goal itself)."""
        if not (self.info["routed"] or self.info["fallback"]):
            self.start(z_now, z_goal)
        return self.subgoal(z_now, step)


def as_router(memory: Any, model: Any, *, lookahead: float = 10.0, stall: int = 6, learn: bool = True,
              env_id: str | None = None) -> Router | None:
    """A :class:`Router` from a memory file (checked against ``model``, and against ``env_id``: the
    env of the recordings it was built from), a :class:`MemoryMap` or a router (returned as it is);
    ``None`` or ``""``: no memory."""
    if memory is None or (isinstance(memory, str) and not memory):
        return None
    if isinstance(memory, Router):
        return memory
    if not isinstance(memory, MemoryMap):
        from .build import load_map

        memory = load_map(memory, model, env_id)
    return Router(memory, lookahead=lookahead, stall=stall, learn=learn)
