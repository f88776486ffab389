"""``worldjepa pretrain``: LeJEPA self-supervised pretraining of an encoder on still frames.

One step: sample B frames, make V views each (:func:`worldjepa.augment.multi_view`), encode
and project all views, and minimise ``lejepa_loss`` (or VICReg, or the invariance term alone
for the collapse baseline), in the shared training loop (:mod:`worldjepa.training.loop`:
schedule, budget, guards, exact resume). A linear probe on the detached embeddings trains
alongside (online probe) when the frames have states or labels. A run directory holds
``model.safetensors`` (encoder + projector, :mod:`worldjepa.encoder_model`),
``last.safetensors``, ``metrics.jsonl`` and ``eval.json`` (frozen-encoder probes on held-out
frames: :func:`worldjepa.eval.probes.evaluate_encoder`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import from_dict
from ..configs import PretrainConfig
from ..encoder_model import build_encoder_model, load_encoder_model
from ..errors import ConfigError
from ..nn import frames_to_float
from .loop import TrainingError, TrainingLoop
from .runfiles import check_same_data

__all__ = ["PretrainConfig", "Pretrainer", "TrainingError", "build_encoder_model", "load_encoder_model",
           "pretrain", "view_config"]

log = logging.getLogger(__name__)


def view_config(cfg: PretrainConfig, size: int) -> Any:
    """The :class:`~worldjepa.augment.MultiViewConfig` of ``cfg.views`` for frames of side ``size``.

    ``crops``: random resized crops of at least ``crop_min`` of the area (aspect 3/4-4/3).
    ``geometry``: the whole frame, moved by at most ``shift`` pixels, no resizing - the
    absolute position of what is in the frame is kept, so the invariance term cannot teach
    the encoder to discard it. Both add colour jitter, blur, ``noise`` and ``flip_p`` flips.
    """
    from ..augment import MultiViewConfig

    common = dict(n_global=cfg.n_global, n_local=cfg.n_local, global_size=size, local_size=size,
                  flip_p=cfg.flip_p, jitter_p=cfg.jitter_p, blur_p=cfg.blur_p, noise_std=cfg.noise)
    if cfg.views == "crops":
        return MultiViewConfig(global_scale=(cfg.crop_min, 1.0), **common)
    return MultiViewConfig(global_scale=(1.0, 1.0), local_scale=(1.0, 1.0), ratio=(1.0, 1.0),
                           max_shift=cfg.shift, **common)


class Pretrainer(TrainingLoop):
    """One LeJEPA pretraining run (resumed with its saved options, but ``stop_at``, ``threads``,
    ``device``, ``progress``, ``tensorboard`` and ``keep`` from this launch)."""

    kind = "lejepa"
    progress_name = "pretrain"

    def setup(self, cfg: PretrainConfig) -> PretrainConfig:
        from ..data.images import load_frames

        if self.resume_meta is not None:
            launch = {k: getattr(cfg, k) for k in ("stop_at", "out", "threads", "device", "progress", "tensorboard",
                                                   "allow_data_change", "keep")}
            cfg = replace(from_dict(PretrainConfig, self.resume_meta["config"]), resume=True, **launch)
        if not cfg.data:
            raise ConfigError("no data: pass --data FILE.h5 or --data FOLDER")
        if cfg.encoder.kind == "module":
            raise ConfigError("pretrain trains worldjepa's own encoders (cnn, vit_tiny); an encoder from outside "
                              "goes straight into a world model: worldjepa train --encoder-module ...")
        self.fingerprint = None
        if Path(cfg.data).is_file():
            from ..data.dataset import Dataset

            with Dataset(cfg.data) as ds:
                ds.check()  # checksums of every action and extra, and of the frames of a sample of episodes
                self.fingerprint = ds.fingerprint()
            if self.resume_meta is not None:
                check_same_data(self.resume_meta.get("dataset"), self.fingerprint, cfg.allow_data_change, self.run_dir)
        self.train = load_frames(cfg.data, "train", cfg.size or None)
        self.size = int(self.train.frames.shape[1])
        log.info("pretrain: %d train frames of %dx%d from %s", len(self.train), self.size, self.size, cfg.data)
        if cfg.temporal and self.train.episodes is None:
            log.warning("pretrain: %s has no episodes (an image folder): temporal views off", cfg.data)
            cfg = replace(cfg, temporal=0)
        self.views = view_config(cfg, self.size)
        self.one_view = replace(self.views, n_global=1, n_local=0)  # temporal views: one draw per frame
        return cfg

    def build_model(self) -> torch.nn.Module:
        from ..losses import SIGReg

        from ..nn._checks import check_fits, check_trainable

        cfg, train = self.cfg, self.train
        check_trainable(lambda: build_encoder_model(cfg, self.size))  # sizes checked before anything is allocated
        check_fits(4 * cfg.batch_size * (cfg.n_global + cfg.n_local) * 3 * self.size ** 2,
                   f"a batch of {cfg.batch_size} frames x {cfg.n_global + cfg.n_local} views")
        model = build_encoder_model(cfg, self.size)
        self.sigreg = SIGReg(num_slices=cfg.sigreg_slices, seed=cfg.seed)
        self.probe = None
        if train.states is not None:
            self.probe = _OnlineProbe(cfg.encoder.dim, cfg.probe_lr, self.device, train.states.mean(0),
                                      train.states.std(0) + 1e-6)
        elif train.labels is not None:
            self.probe = _OnlineProbe(cfg.encoder.dim, cfg.probe_lr, self.device, n_classes=len(train.classes))
        self.targets = train.states if train.states is not None else train.labels
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        return model

    def warmup_steps(self) -> int:
        return max(1, int(self.cfg.warmup * self.total))

    def describe(self) -> dict[str, Any]:
        return {"model": self.model.arch, "frame_size": self.size, "data": str(self.cfg.data),
                **({"dataset": self.fingerprint} if self.fingerprint else {})}

    def batch_loss(self) -> dict[str, Tensor]:
        cfg = self.cfg
        total = cfg.batch_size * self.world  # the global batch; this rank's share of it below
        rows = self.shard(np.arange(total))
        self._idx = self.shard(self.rng.integers(0, len(self.train), total))  # (B,)
        dtype = next(self.model.parameters()).dtype
        self._x = frames_to_float(self.train.frames[self._idx], self.device).to(dtype)  # (B, 3, S, S)
        allv = _make_views(cfg, self.train, self._idx, self._x, self.views, self.one_view, self.gen, self.rng,
                           (rows, total), self.shard)
        v, b = allv.shape[:2]  # (V, B, 3, S, S)
        _, z = self.net(allv.reshape(v * b, 3, self.size, self.size))  # (V*B, E), (V*B, P)
        self._z0 = z.detach()[:b]  # projected view 0: (B, P)
        return _objective(cfg, z.view(v, b, -1), self.sigreg)

    def after_update(self) -> None:
        if self.probe is not None:  # on the clean frames: crops move the agent, the state does not
            with torch.no_grad():
                h_clean = self.model.encode(self._x)  # (B, E); the encoder has no batch statistics
            self.probe.update(h_clean, self.targets[self._idx])

    def periodic(self, last: bool) -> dict[str, float]:
        from ..metrics import rankme

        if self.step % self.cfg.probe_every and not last:
            return {}
        return {**(self.probe.report() if self.probe is not None else {}), "probe/rank": rankme(self._z0, center=True)}

    def task_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        from .. import checkpoint as ckpt

        tensors = {"sigreg/step": self.sigreg.step.clone(), "rng/views": self.gen.get_state()}
        info: dict[str, Any] = {}
        if self.probe is not None:
            p_opt, info["probe_optim"] = ckpt.flatten_optimizer(self.probe.opt.state_dict())
            tensors.update({f"probe/{k}": v for k, v in self.probe.head.state_dict().items()})
            tensors.update({f"probe_{k}": v for k, v in p_opt.items()})
            info["probe_stats"] = self.probe.stats
        return tensors, info

    def load_task_state(self, tensors: dict[str, Tensor], info: dict[str, Any]) -> None:
        from .. import checkpoint as ckpt

        self.sigreg.step.copy_(tensors["sigreg/step"])
        self.gen.set_state(tensors["rng/views"])
        if self.probe is not None:
            self.probe.head.load_state_dict({k[len("probe/"):]: v for k, v in tensors.items() if k.startswith("probe/")})
            p_opt = {k[len("probe_"):]: v for k, v in tensors.items() if k.startswith("probe_optim/")}
            self.probe.opt.load_state_dict(ckpt.unflatten_optimizer(p_opt, info["probe_optim"]))
            self.probe.stats = list(info["probe_stats"])


def pretrain(cfg: PretrainConfig) -> dict[str, Any]:
    """Run (or, with ``cfg.resume``, continue) LeJEPA pretraining to its end or ``cfg.stop_at``;
    returns the last metrics and, at the end of the schedule, the frozen-encoder evaluation
    (also written to ``eval.json``). A non-finite loss raises :class:`TrainingError` naming the
    step; the checkpoints on disk stay those of the last good save."""
    from ..atomic import atomic_write_text

    run = Pretrainer(cfg)
    result = run.fit(stop_at=run.cfg.stop_at or None)
    run.close()
    if run.step >= run.total and run.is_main:
        from ..encoder_model import evaluate_encoder

        ev = evaluate_encoder(run.model, run.cfg.data, max_frames=run.cfg.eval_frames, seed=run.cfg.seed)
        atomic_write_text(Path(run.cfg.out) / "eval.json", json.dumps(ev, indent=2) + "\n")
        result["eval"] = ev
    return result


class _OnlineProbe:
    """A linear head on detached embeddings, trained alongside (LeJEPA's online probe).

    Regression on standardised states (reports ``probe/r2`` on each batch *before* the head
    sees it, pooled since the last report) or classification (``probe/acc``). It reads the
    encoder's embeddings of the un-augmented frames (one extra forward without gradient).
    """

    def __init__(self, dim: int, lr: float, device: torch.device, mean: np.ndarray | None = None,
                 std: np.ndarray | None = None, n_classes: int = 0) -> None:
        from torch import nn

        self.regress = mean is not None
        out = len(mean) if mean is not None else n_classes
        # BatchNorm without affine standardises the embedding, whose scale SIGReg does not set
        self.head = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, out)).to(device)
        self.opt = torch.optim.Adam(self.head.parameters(), lr=lr)
        self.mean = None if mean is None else torch.as_tensor(mean, device=device)
        self.std = None if std is None else torch.as_tensor(std, device=device)
        self.stats = [0.0, 0.0, 0.0, 0.0]  # regression: n, sum sq. error, sum y, sum y^2; else n, correct

    def update(self, h: Tensor, target: np.ndarray) -> None:
        """h (M, E) detached embeddings; target (M, K) states or (M,) labels."""

        pred = self.head(h)  # (M, K) or (M, C)
        if self.regress:
            y = (torch.as_tensor(target, device=pred.device) - self.mean) / self.std  # (M, K) standardised
            loss = (pred - y).square().mean()
            s = self.stats
            s[0] += y.numel()
            s[1] += float((pred.detach() - y).square().sum())
            s[2] += float(y.sum())
            s[3] += float(y.square().sum())
        else:
            y = torch.as_tensor(target, device=pred.device)  # (M,)
            loss = torch.nn.functional.cross_entropy(pred, y)
            self.stats[0] += len(y)
            self.stats[1] += float((pred.argmax(1) == y).sum())
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def report(self) -> dict[str, float]:
        n, a, b, c = self.stats
        self.stats = [0.0, 0.0, 0.0, 0.0]
        if n == 0:
            return {}
        if self.regress:
            return {"probe/r2": 1.0 - a / max(c - b * b / n, 1e-12)}
        return {"probe/acc": a / n}


def _objective(cfg: PretrainConfig, z: Tensor, sigreg: torch.nn.Module) -> dict[str, Tensor]:
    """Loss terms of projected views z (V, B, P)."""
    from ..losses import VICReg, lejepa_loss

    g = cfg.n_global
    if cfg.regularizer == "vicreg":
        vic = VICReg()
        parts = [vic(z[0], z[v]) for v in range(1, z.shape[0])]
        loss = sum(p["loss"] for p in parts) / len(parts)
        inv = sum(p["invariance"] for p in parts) / len(parts)
        return {"loss": loss, "pred": inv, "vicreg": loss}
    lam = cfg.lam if cfg.regularizer == "sigreg" else 0.0  # "none": invariance only -> collapse
    return lejepa_loss(z[:g], z, sigreg, lam)


def _make_views(cfg: PretrainConfig, train: Any, idx: np.ndarray, x: Tensor, views: Any, one_view: Any,
                gen: Any, rng: np.random.Generator, part: tuple[np.ndarray, int], shard: Any) -> Tensor:
    """The V = n_global + n_local views ``(V, B, 3, S, S)`` of the batch frames ``x`` (rows
    ``idx`` of ``train``): with ``cfg.temporal``, global view v > 0 is a frame up to that many
    steps away in the same episode (its own draw of noise etc.), local views come from ``x``.
    ``part``: which rows of the global batch of ``total`` these are (all of it in one process);
    ``shard`` keeps this rank's share of values drawn for the global batch."""
    from ..augment import multi_view

    rows, total = torch.as_tensor(part[0]), part[1]
    if not cfg.temporal:
        mv = multi_view(x, views, gen, (rows, total))
        return torch.cat([mv.global_views, mv.local_views]) if cfg.n_local else mv.global_views
    b, size = len(idx), x.shape[-1]
    off = shard(rng.integers(-cfg.temporal, cfg.temporal + 1, (cfg.n_global, total)), axis=1)  # (G, B)
    off[0] = 0
    near = train.neighbours(idx[None], off[1:])  # (G-1, B); view 0 is x itself
    xs = torch.cat([x, frames_to_float(train.frames[near.reshape(-1)], x.device).to(x.dtype)])  # (G*B, 3, S, S)
    grows = (torch.arange(cfg.n_global)[:, None] * total + rows[None]).reshape(-1)  # (G*B,) rows of G*total
    glob = multi_view(xs, one_view, gen, (grows, cfg.n_global * total)).global_views.reshape(
        cfg.n_global, b, 3, size, size)
    return torch.cat([glob, multi_view(x, views, gen, (rows, total)).local_views]) if cfg.n_local else glob
