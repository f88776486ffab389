"""A subgoal model learned from the memory's episodes: where a remembered path would be next.

The map (:mod:`.graph`) reuses remembered paths only where they pass: a start and a goal that
no chain of recorded moves joins get no route. In a world of many degrees of freedom (Push-T:
the pusher and the block's pose) recordings hardly ever revisit a state, and the map falls
apart into the recorded paths themselves. :class:`SubgoalModel` generalises them instead:
trained on the remembered episodes, it maps the embedding of where the agent is, ``z``, the
goal's, ``g``, and a lookahead ``k`` (env steps) to

* the embedding a recorded episode that went from ``z`` to ``g`` held ``k`` steps after ``z``
  (``g`` itself when the goal was fewer than ``k`` steps away): the next subgoal, and
* the env steps the episode took from ``z`` to ``g``: how far the goal is.

The :class:`~worldjepa.memory.reasoning.Router` asks it for the next subgoal, ``k`` steps
ahead, whenever the map cannot route, and aims at the goal itself once it is at most ``k``
steps away: a high-level model in the sense of hierarchical world models (HWM), learned from
the same reward-free recordings as the world model, in its latent. The world-model MPC drives
each leg as it drives a route's legs.

Training pairs (``fit_subgoals``): an entry ``z`` at step ``s`` of an episode, a later entry
of the same episode as the goal (uniform over the rest of the episode), ``k`` uniform in
``1..max_k``; the target is the episode's last entry at most ``k`` steps after ``s`` (at least
the next one; the goal when it comes first). The loss is the squared error of the subgoal
(summed over dimensions) plus that of the steps to the goal in units of ``step_scale`` (the
longest remembered episode). The model predicts the subgoal as a change from ``z``.
A tenth of the episodes is held out: the fit reports the subgoal error on them beside two
baselines (staying at ``z``, and the straight line from ``z`` toward ``g``) and the error of
the steps to the goal.

Stored in the memory file (table ``models``, :meth:`~worldjepa.memory.store.MemoryStore.set_model`):
the weights as safetensors bytes and its config as JSON.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import WorldJepaError

__all__ = ["SubgoalModel", "fit_subgoals", "load_subgoals", "save_subgoals"]
logger = logging.getLogger(__name__)
NAME = "subgoals"  # its row in the memory file's ``models`` table


class SubgoalModel(nn.Module):
    """``(z, g, k) -> (subgoal (..., D), steps to the goal (...,))`` for embeddings ``z``, ``g``
    ``(..., D)`` and lookaheads ``k`` ``(...,)`` in env steps: an MLP of ``layers`` hidden layers
    of ``hidden`` units with GELU."""

    def __init__(self, dim: int, hidden: int = 512, layers: int = 3, max_k: int = 25, step_scale: float = 100.0) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or layers < 1 or max_k < 1 or not step_scale > 0:
            raise WorldJepaError(f"subgoal model: dim, hidden, layers, max_k must be >= 1 and step_scale > 0, got "
                                 f"{dim}, {hidden}, {layers}, {max_k}, {step_scale}")
        self.dim, self.hidden, self.layers, self.max_k, self.step_scale = dim, hidden, layers, max_k, float(step_scale)
        sizes = [2 * dim + 1] + [hidden] * layers
        body: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            body += [nn.Linear(a, b), nn.GELU()]
        self.net = nn.Sequential(*body, nn.Linear(hidden, dim + 1))

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim, "hidden": self.hidden, "layers": self.layers, "max_k": self.max_k,
                "step_scale": self.step_scale}

    def forward(self, z: Tensor, g: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([z, g, (k.to(z.dtype) / self.max_k).unsqueeze(-1)], -1)
        out = self.net(x)
        return z + out[..., :-1], out[..., -1] * self.step_scale

    @torch.no_grad()
    def propose(self, z: np.ndarray, g: np.ndarray, k: float) -> tuple[np.ndarray, float]:
        """The subgoal ``(D,)`` ``k`` env steps ahead (``k`` clipped to ``1..max_k``) on the way
        from ``z`` to ``g`` (``(D,)`` each), and the steps the goal is estimated to lie away."""
        w = next(self.parameters())
        zt = torch.as_tensor(np.asarray(z, np.float32).reshape(1, -1), device=w.device)
        gt = torch.as_tensor(np.asarray(g, np.float32).reshape(1, -1), device=w.device)
        kt = torch.full((1,), float(min(max(k, 1.0), self.max_k)), device=w.device)
        sub, steps = self(zt, gt, kt)
        return sub[0].cpu().numpy(), float(steps[0])


class _Pairs:
    """Training triples drawn from entries sorted by (episode, step)."""

    def __init__(self, z: np.ndarray, episodes: np.ndarray, steps: np.ndarray) -> None:
        order = np.lexsort((steps, episodes))
        self.z = torch.from_numpy(np.ascontiguousarray(z[order], np.float32))
        self.ep, self.step = episodes[order].astype(np.int64), steps[order].astype(np.int64)
        last = np.r_[np.flatnonzero(np.diff(self.ep) != 0), len(self.ep) - 1]  # each episode's last row
        self.end = np.repeat(last, np.diff(np.r_[-1, last]))  # (N,) the last row of each row's episode
        self.starts = np.flatnonzero(self.end > np.arange(len(self.ep)))  # rows with a later row
        span = int(self.step.max() - self.step.min()) + 1 if len(self.step) else 1
        self.key = (self.ep - self.ep.min()) * (2 * span) + (self.step - self.step.min())  # sorted

    def sample(self, n: int, max_k: int, rng: np.random.Generator) -> tuple[Tensor, ...]:
        i = self.starts[rng.integers(0, len(self.starts), n)]
        j = i + 1 + (rng.random(n) * (self.end[i] - i)).astype(np.int64)  # the goal: a later row, uniform
        k = rng.integers(1, max_k + 1, n)
        t = np.searchsorted(self.key, self.key[i] + k, "right") - 1  # the last row <= k steps ahead
        t = np.clip(t, i + 1, j)
        return (self.z[i], self.z[j], torch.from_numpy(k), self.z[t],
                torch.from_numpy((self.step[j] - self.step[i]).astype(np.float32)))


def fit_subgoals(z: np.ndarray, episodes: np.ndarray, steps: np.ndarray, *, train_steps: int = 10000,
                 batch: int = 512, lr: float = 1e-3, hidden: int = 512, layers: int = 3, max_k: int = 25,
                 val_share: float = 0.1, seed: int = 0, progress: bool = False,
                 device: str | torch.device = "cpu") -> tuple[SubgoalModel, dict[str, Any]]:
    """Train a :class:`SubgoalModel` on remembered entries: embeddings ``z`` ``(N, D)`` seen at
    ``steps`` ``(N,)`` of ``episodes`` ``(N,)``. Returns the model (eval mode) and the fit's report:
    held-out subgoal error (Euclidean, mean) beside staying put and the straight line, and the
    mean absolute error of the steps to the goal (env steps). Trained on ``device``, returned on the CPU."""
    from ..progress import Progress

    z, episodes, steps = np.asarray(z, np.float32), np.asarray(episodes), np.asarray(steps)
    if z.ndim != 2 or len(episodes) != len(z) or len(steps) != len(z):
        raise WorldJepaError(f"fit_subgoals: z must be (N, D) with N episodes and steps, got {z.shape}, "
                             f"{episodes.shape}, {steps.shape}")
    if train_steps < 1 or batch < 1:
        raise WorldJepaError(f"fit_subgoals: train_steps and batch must be >= 1, got {train_steps}, {batch}")
    eps, which = np.unique(episodes, return_inverse=True)
    rng = np.random.default_rng(seed)
    n_val = int(round(val_share * len(eps))) if len(eps) >= 2 else 0
    val_eps = rng.choice(eps, n_val, replace=False) if n_val else eps[:0]
    held = np.isin(episodes, val_eps)
    train = _Pairs(z[~held], episodes[~held], steps[~held])
    if not len(train.starts):
        raise WorldJepaError("fit_subgoals: no remembered episode holds two entries: nothing to learn a path from")
    first, last = np.full(len(eps), np.inf), np.full(len(eps), -np.inf)
    np.minimum.at(first, which, steps)
    np.maximum.at(last, which, steps)
    torch.manual_seed(seed)  # the steps to the goal in units of the longest episode
    model = SubgoalModel(z.shape[1], hidden, layers, max_k, step_scale=max(1.0, float((last - first).max()))).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=train_steps, pct_start=0.05)
    t0 = time.time()
    model.train()
    with Progress(train_steps, "memory: subgoals", "step", enabled=progress) as bar:
        for _ in range(train_steps):
            zi, zj, k, zt, d = (x.to(device) for x in train.sample(batch, max_k, rng))
            sub, est = model(zi, zj, k)
            loss = (sub - zt).square().sum(-1).mean() + ((est - d) / model.step_scale).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    model = model.cpu().eval()
    report: dict[str, Any] = {"train_steps": train_steps, "batch": batch, "seconds": round(time.time() - t0, 1),
                              "train_episodes": int(len(eps) - n_val), "val_episodes": int(n_val),
                              "loss": float(loss.detach())}
    if n_val:
        report.update(_validate(model, _Pairs(z[held], episodes[held], steps[held]), max_k, seed))
    logger.debug("subgoal model: %s", report)
    return model, report


@torch.no_grad()
def _validate(model: SubgoalModel, pairs: _Pairs, max_k: int, seed: int, n: int = 4096) -> dict[str, float | None]:
    if not len(pairs.starts):
        return {}
    zi, zj, k, zt, d = pairs.sample(n, max_k, np.random.default_rng(seed + 1))
    sub, est = model(zi, zj, k)
    far = d > k  # pairs whose goal lies beyond the lookahead: the subgoal is not the goal itself
    line = zi + (k / d).clamp(max=1).unsqueeze(-1) * (zj - zi)
    err = lambda a: float((a - zt).norm(dim=-1)[far].mean()) if bool(far.any()) else None  # noqa: E731
    return {"val_subgoal_error": err(sub), "val_stay_error": err(zi), "val_line_error": err(line),
            "val_steps_mae": float((est - d).abs().mean())}


def save_subgoals(store: Any, model: SubgoalModel, report: dict[str, Any]) -> None:
    """Keep ``model`` in the memory file of ``store`` (an open, writable
    :class:`~worldjepa.memory.store.MemoryStore`), replacing any earlier one."""
    from safetensors.torch import save

    blob = save({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    store.set_model(NAME, {"kind": NAME, **model.config(), "fit": report}, blob)


def load_subgoals(store: Any) -> SubgoalModel | None:
    """The subgoal model kept in the memory file of ``store``, or ``None`` when it holds none."""
    from safetensors.torch import load

    found = store.model(NAME)
    if found is None:
        return None
    config, blob = found
    try:
        model = SubgoalModel(int(config["dim"]), int(config["hidden"]), int(config["layers"]), int(config["max_k"]),
                             float(config["step_scale"]))
        model.load_state_dict(load(blob))
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        from ..errors import MemoryFileError

        raise MemoryFileError(f"{store.path}: its subgoal model cannot be read ({str(e).splitlines()[0]}); "
                              "rebuild it with `worldjepa memory build --subgoals N`") from None
    if model.dim != store.dim:
        from ..errors import MemoryFileError

        raise MemoryFileError(f"{store.path}: its subgoal model works on {model.dim}-D embeddings, the memory "
                              f"holds {store.dim}-D ones")
    return model.eval()
