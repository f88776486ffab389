"""Short-term memory: what the agent saw and did in the last few model steps.

The predictor conditions on the last ``length`` observed embeddings ``k`` env steps apart
(``k`` the frame-skip) and the macro-actions executed between them. :class:`History` keeps
exactly that, for one or several world models at once (an ensemble embeds each observation
in every member's latent; the actions are shared), and the context each observation had, so
that the next observation's surprise can be measured against what was predicted from it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class History:
    """Embeddings observed at env steps and the env actions executed, for ``members`` models.

    Args:
        frameskip: ``k``, env steps per model step.
        length: embeddings in the predictor's context (the model's ``history``).
        macro_dim: size of a macro-action, ``k * A``.
        members: number of world models whose embeddings are kept.

    The clock :attr:`t` counts env steps since :meth:`reset`; :meth:`record` advances it.
    :meth:`add` stores the embeddings of the observation at step ``t`` and makes the context
    the embeddings at steps ``t, t - k, ...`` (those observed) with the macro-actions between.
    """

    def __init__(self, frameskip: int, length: int, macro_dim: int, members: int = 1) -> None:
        self.k, self.length, self.macro_dim, self.members = frameskip, length, macro_dim, members
        self.reset()

    def reset(self) -> None:
        """Forget everything (a new episode)."""
        self.t = 0  # env steps since reset
        self._seen: list[dict[int, Tensor]] = [{} for _ in range(self.members)]  # env step -> (D,)
        self._executed: list[np.ndarray] = []  # (A,) env actions of the last (length - 1) * k steps (and since)
        self.z: list[list[Tensor]] = [[] for _ in range(self.members)]  # the context's (D,) embeddings, oldest first
        self.a: list[Tensor] = []  # the context's (k*A,) macro-actions
        self._contexts: dict[int, tuple[list[list[Tensor]], list[Tensor]]] = {}  # step -> the context made there

    @property
    def span(self) -> int:
        """Env steps between the context's oldest and newest embeddings, at most."""
        return (self.length - 1) * self.k

    def record(self, action: np.ndarray) -> None:
        """The env action ``(A,)`` executed at step ``t`` (as the env received it); advances ``t``."""
        self._executed.append(np.asarray(action, np.float32))
        self.t += 1

    def add(self, embeddings: list[Tensor]) -> None:
        """The observation at step ``t``, embedded by each member: ``(D,)`` each."""
        t, span, device = self.t, self.span, embeddings[0].device
        for i, z in enumerate(embeddings):
            self._seen[i] = {s: y for s, y in self._seen[i].items() if s >= t - span} | {t: z}
        times = [t]  # the observed steps t, t - k, ... (all of them when replanning divides k)
        while len(times) < self.length and times[0] - self.k >= 0 and times[0] - self.k in self._seen[0]:
            times.insert(0, times[0] - self.k)
        self.z = [[seen[s] for s in times] for seen in self._seen]
        first = t - len(self._executed)  # the env step of _executed[0]
        self.a = [torch.as_tensor(np.concatenate(self._executed[s - first:s - first + self.k]), device=device)
                  for s in times[:-1]]
        self._contexts = {s: c for s, c in self._contexts.items() if s > t - self.k}
        self._contexts[t] = ([list(z) for z in self.z], list(self.a))
        keep = max(span, self.k)  # the context's actions, and those the next surprise needs
        self._executed = self._executed[len(self._executed) - keep:] if len(self._executed) > keep else self._executed

    def context(self, member: int = 0) -> tuple[Tensor, Tensor]:
        """The predictor's context: embeddings ``(1, Th, D)`` and macro-actions ``(1, Th - 1, k*A)``."""
        return self._stack(self.z[member], self.a)

    def _stack(self, z: list[Tensor], a: list[Tensor]) -> tuple[Tensor, Tensor]:
        zs = torch.stack(z)[None]  # (1, Th, D)
        return zs, (torch.stack(a)[None] if a else zs.new_zeros(1, 0, self.macro_dim))  # (1, Th-1, k*A)

    def previous(self, member: int = 0) -> tuple[Tensor, Tensor, Tensor] | None:
        """The context made ``k`` env steps ago and the macro-action executed since, ``(1, Th, D)``,
        ``(1, Th - 1, k*A)``, ``(1, 1, 1, k*A)``: what predicts the embedding at step ``t``.
        ``None`` when nothing was observed ``k`` steps ago (the episode's first model step)."""
        before = self._contexts.get(self.t - self.k)
        if before is None or len(self._executed) < self.k:
            return None
        z, a = self._stack(before[0][member], before[1])
        macro = torch.as_tensor(np.concatenate(self._executed[-self.k:]), device=z.device)  # (k*A,)
        return z, a, macro.view(1, 1, 1, -1)
