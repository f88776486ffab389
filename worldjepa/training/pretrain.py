"""LeJEPA self-supervised pretraining of an encoder on still frames, and its evaluation.

One step: sample B frames, make V views each (:func:`worldjepa.augment.multi_view`), encode
and project all views, and minimise ``lejepa_loss`` (or VICReg, or the invariance term alone
for the collapse baseline) with AdamW under a linear warm-up + cosine schedule. A linear
probe on the detached embeddings trains alongside (online probe) when the frames have
states or labels. A run directory holds ``model.safetensors`` (encoder + projector),
``last.safetensors`` (+ optimizers, RNG, step: exact resume), ``metrics.jsonl`` and
``eval.json`` (frozen-encoder probes on held-out frames:
:func:`worldjepa.eval.probes.evaluate_encoder`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ..config import from_dict, opt, to_dict
from ..errors import ConfigError, WorldJepaError
from . import checkpoint as ckpt

__all__ = ["PretrainConfig", "PretrainError", "LeJEPAModel", "build_model", "embed", "lr_at",
           "load_model", "pretrain"]

if TYPE_CHECKING:
    import torch
    from torch import Tensor

log = logging.getLogger(__name__)


class PretrainError(WorldJepaError):
    """Training went wrong in a way the user can act on (NaN loss, nothing to resume)."""


@dataclass(frozen=True)
class PretrainConfig:
    """LeJEPA pretraining options (``worldjepa pretrain``)."""

    data: str = opt("", "worldjepa dataset (.h5; train-split frames, states for probes) or a folder of images")
    out: str = opt("runs/pretrain", "run directory (model.safetensors, last.safetensors, metrics.jsonl, eval.json)")
    steps: int = opt(2000, "optimizer steps (the schedule's length)")
    minutes: float = opt(0.0, "training budget in minutes; > 0 sets steps from the time of steps 1-5 (and stops at the budget)")
    stop_at: int = opt(0, "stop at this step with a resumable checkpoint, schedule unfinished (0: run to the end)")
    encoder: Literal["cnn", "vit_tiny"] = opt("cnn", "encoder: the CPU-sized CNN or ViT-tiny")
    size: int = opt(0, "frame side in pixels (0: the dataset's; 64 for image folders)")
    channels: tuple[int, ...] = opt((32, 64, 128, 256), "CNN channels, one stride-2 conv per entry (cnn only)")
    embed_dim: int = opt(256, "encoder output (the embedding the probes read)")
    keypoints: int = opt(0, "cnn: K spatial-softmax keypoints, the last 2K embedding entries (expected x, y of "
                            "K learned heatmaps): distances that keep growing with how far things moved")
    proj_hidden: int = opt(512, "projector hidden width (BatchNorm MLP)")
    proj_dim: int = opt(16, "projector output, where the regulariser acts (16-64 per LeJEPA; 16 probed best on TwoRoom)")
    regulariser: Literal["sigreg", "vicreg", "none"] = opt("sigreg", "sigreg (LeJEPA), vicreg, or none (collapses)")
    lam: float = opt(0.05, "LeJEPA lambda: weight of SIGReg against the view-prediction term")
    slices: int = opt(512, "SIGReg random directions per step")
    batch_size: int = opt(64, "frames per step")
    n_global: int = opt(2, "global views per frame")
    n_local: int = opt(0, "local views per frame (rendered at the encoder's size)")
    views: Literal["geometry", "crops"] = opt("geometry", "view policy: geometry (the whole frame, shifted by <= shift px; colour jitter, blur, noise) or crops (random resized crops of >= crop_min)")
    temporal: int = opt(3, "temporal views: global view v of a frame is the same episode's frame up to this "
                           "many steps before or after it (view 0 is the frame itself); 0 = off. Datasets "
                           "only: image folders have no episodes and get views of the one image")
    shift: float = opt(0.0, "geometry views: largest translation per axis, pixels (even 1 px moves the walls: a nuisance the regulariser latches onto)")
    noise: float = opt(0.02, "std of additive gaussian pixel noise per view (frames in [0, 1])")
    crop_min: float = opt(0.6, "crops views: smallest global crop, as a fraction of the image area")
    flip_p: float = opt(0.0, "horizontal flip probability (0 for frames whose left/right matters)")
    jitter_p: float = opt(0.0, "probability of colour jitter per view (off: on near-constant frames it is the main source of variance)")
    blur_p: float = opt(0.0, "probability of gaussian blur per view")
    lr: float = opt(1e-3, "peak AdamW learning rate")
    weight_decay: float = opt(0.05, "AdamW weight decay")
    warmup: float = opt(0.05, "fraction of the steps spent warming the learning rate up linearly")
    probe_lr: float = opt(1e-3, "learning rate of the online linear probe (Adam)")
    log_every: int = opt(10, "steps between metric lines")
    probe_every: int = opt(50, "steps between online-probe reports (probe/r2 or probe/acc; probe/rank of the projections)")
    save_every: int = opt(500, "steps between checkpoints")
    eval_frames: int = opt(4000, "frames per split for the final frozen-encoder evaluation (0: all)")
    seed: int = opt(0, "seed of initialisation, sampling, views and SIGReg directions")
    threads: int = opt(0, "torch CPU threads (0 = torch's default); on --resume this launch's value is used")

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ConfigError("need steps >= 1 and batch_size >= 2")
        if self.minutes < 0 or self.stop_at < 0:
            raise ConfigError("minutes and stop_at must be >= 0")
        if not 0 <= self.lam <= 1:
            raise ConfigError(f"lam must be in [0, 1], got {self.lam}")
        if self.shift < 0 or self.noise < 0 or self.temporal < 0:
            raise ConfigError("shift, noise and temporal must be >= 0")
        if not 0 < self.crop_min <= 1:
            raise ConfigError(f"crop_min must be in (0, 1], got {self.crop_min}")
        if self.regulariser == "vicreg" and self.n_global < 2:
            raise ConfigError("vicreg needs n_global >= 2 views")
        if self.lr <= 0 or not 0 <= self.warmup < 1:
            raise ConfigError("need lr > 0 and 0 <= warmup < 1")
        if min(self.log_every, self.probe_every, self.save_every) < 1:
            raise ConfigError("log_every, probe_every and save_every must be >= 1")


@cache
def _model_class() -> type:
    """Define :class:`LeJEPAModel` on first use: torch loads then, not when the CLI starts."""
    from torch import nn

    class LeJEPAModel(nn.Module):
        """Encoder + BatchNorm projector: frames (B, 3, S, S) in [0, 1] -> (B, E) and (B, P)."""

        def __init__(self, encoder: str = "cnn", size: int = 64, embed_dim: int = 256,
                     proj_hidden: int = 512, proj_dim: int = 32,
                     channels: tuple[int, ...] | list[int] = (32, 64, 128, 256), keypoints: int = 0) -> None:
            super().__init__()
            from ..nn import Projector, build_encoder

            self.arch = dict(encoder=encoder, size=size, embed_dim=embed_dim, proj_hidden=proj_hidden,
                             proj_dim=proj_dim, channels=list(channels))
            if keypoints:
                self.arch["keypoints"] = keypoints  # absent = 0: checkpoints from before the option
            extra = {"channels": tuple(channels), "keypoints": keypoints} if encoder == "cnn" else {}
            self.encoder = build_encoder(encoder, size=size, out_dim=embed_dim, **extra)
            self.projector = Projector(embed_dim, proj_hidden, proj_dim)

        def encode(self, frames: Tensor) -> Tensor:
            """(B, 3, S, S) -> (B, E) embeddings (what probes and downstream models read)."""
            return self.encoder(frames)

        def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
            h = self.encoder(frames)  # (B, E)
            return h, self.projector(h)  # (B, E), (B, P)

    return LeJEPAModel


def __getattr__(name: str) -> Any:
    if name == "LeJEPAModel":
        return _model_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_model(cfg: PretrainConfig, size: int) -> Any:
    """The :class:`LeJEPAModel` a config describes, for frames of side ``size``."""
    if cfg.keypoints and cfg.encoder != "cnn":
        raise PretrainError(f"--keypoints is an option of the cnn encoder, not {cfg.encoder}")
    return _model_class()(cfg.encoder, size, cfg.embed_dim, cfg.proj_hidden, cfg.proj_dim, cfg.channels,
                          cfg.keypoints)


def load_model(run: str | Path) -> tuple[Any, dict[str, Any]]:
    """A trained model (eval mode) and its metadata from a run directory or checkpoint file."""
    tensors, meta = ckpt.load(run)
    if meta.get("kind") != "lejepa":
        raise ckpt.CheckpointError(f"{run} is not a LeJEPA pretraining checkpoint (kind {meta.get('kind')!r})")
    model = _model_class()(**meta["model"])
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    return model.eval(), meta


def to_images(frames: np.ndarray) -> Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [0, 1]."""
    import torch

    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)


def embed(model: Any, frames: np.ndarray, batch_size: int = 256) -> Tensor:
    """Encoder embeddings of uint8 frames (N, H, W, 3) -> (N, E), eval mode, no gradient."""
    import torch

    was = model.training
    model.eval()
    with torch.no_grad():
        out = [model.encode(to_images(frames[i:i + batch_size])) for i in range(0, len(frames), batch_size)]
    model.train(was)
    return torch.cat(out)  # (N, E)


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


def lr_at(cfg: PretrainConfig, step: int, total: int) -> float:
    """Linear warm-up to ``cfg.lr`` then cosine decay to 1% of it, at ``step`` of ``total``."""
    from ..utils import warmup_cosine

    return warmup_cosine(step, total, cfg.lr, max(1, int(cfg.warmup * total)), 0.01)


class _OnlineProbe:
    """A linear head on detached embeddings, trained alongside (LeJEPA's online probe).

    Regression on standardised states (reports ``probe/r2`` on each batch *before* the head
    sees it, pooled since the last report) or classification (``probe/acc``). It reads the
    encoder's embeddings of the un-augmented frames (one extra forward without gradient).
    """

    def __init__(self, dim: int, lr: float, mean: np.ndarray | None = None, std: np.ndarray | None = None,
                 n_classes: int = 0) -> None:
        import torch
        from torch import nn

        self.regress = mean is not None
        out = len(mean) if mean is not None else n_classes
        # BatchNorm without affine standardises the embedding, whose scale SIGReg does not set
        self.head = nn.Sequential(nn.BatchNorm1d(dim, affine=False), nn.Linear(dim, out))
        self.opt = torch.optim.Adam(self.head.parameters(), lr=lr)
        self.mean = None if mean is None else torch.as_tensor(mean)
        self.std = None if std is None else torch.as_tensor(std)
        self.stats = [0.0, 0.0, 0.0, 0.0]  # regression: n, sum sq. error, sum y, sum y^2; else n, correct

    def update(self, h: Tensor, target: np.ndarray) -> None:
        """h (M, E) detached embeddings; target (M, K) states or (M,) labels."""
        import torch

        pred = self.head(h)  # (M, K) or (M, C)
        if self.regress:
            y = (torch.as_tensor(target) - self.mean) / self.std  # (M, K) standardised
            loss = (pred - y).square().mean()
            s = self.stats
            s[0] += y.numel()
            s[1] += float((pred.detach() - y).square().sum())
            s[2] += float(y.sum())
            s[3] += float(y.square().sum())
        else:
            y = torch.as_tensor(target)  # (M,)
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
    if cfg.regulariser == "vicreg":
        vic = VICReg()
        parts = [vic(z[0], z[v]) for v in range(1, z.shape[0])]
        loss = sum(p["loss"] for p in parts) / len(parts)
        inv = sum(p["invariance"] for p in parts) / len(parts)
        return {"loss": loss, "pred": inv, "vicreg": loss}
    lam = cfg.lam if cfg.regulariser == "sigreg" else 0.0  # "none": invariance only -> collapse
    return lejepa_loss(z[:g], z, sigreg, lam)


def _prefixed(prefix: str, d: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}/{k}": v for k, v in d.items()}


def _unprefixed(prefix: str, d: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k[len(prefix) + 1:]: v for k, v in d.items() if k.startswith(prefix + "/")}


def pretrain(cfg: PretrainConfig, resume: bool = False, progress: bool = False) -> dict[str, Any]:
    """Run (or resume) LeJEPA pretraining; returns the last metrics and the evaluation.

    With ``resume``, the run in ``cfg.out`` continues from ``last.safetensors`` with its saved
    configuration (only ``stop_at`` is taken from ``cfg``): the losses equal an uninterrupted
    run's. A non-finite loss raises :class:`PretrainError` naming the step; the checkpoints
    on disk stay those of the last good save.
    """
    import torch
    from tqdm.auto import tqdm

    from .._version import __version__
    from ..data.images import load_frames
    from ..losses import SIGReg, SIGRegError
    from ..utils import atomic_write_text

    out = Path(cfg.out)
    state: dict[str, Tensor] = {}
    meta: dict[str, Any] = {}
    if resume:
        if not (out / ckpt.RESUME_FILE).is_file():
            raise PretrainError(f"nothing to resume: {out / ckpt.RESUME_FILE} does not exist")
        state, meta = ckpt.load(out / ckpt.RESUME_FILE)
        cfg = replace(from_dict(PretrainConfig, meta["config"]), stop_at=cfg.stop_at, out=str(out), threads=cfg.threads)
    elif (out / ckpt.RESUME_FILE).exists():
        raise PretrainError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if not cfg.data:
        raise ConfigError("no data: pass --data FILE.h5 or --data FOLDER")
    train = load_frames(cfg.data, "train", cfg.size or None)
    size = int(train.frames.shape[1])
    log.info("pretrain: %d train frames of %dx%d from %s", len(train), size, size, cfg.data)

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg, size).train()
    sigreg = SIGReg(num_slices=cfg.slices, seed=cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    probe = None
    if train.states is not None:
        probe = _OnlineProbe(cfg.embed_dim, cfg.probe_lr, train.states.mean(0), train.states.std(0) + 1e-6)
    elif train.labels is not None:
        probe = _OnlineProbe(cfg.embed_dim, cfg.probe_lr, n_classes=len(train.classes))
    targets = train.states if train.states is not None else train.labels
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    views = view_config(cfg, size)
    one_view = replace(views, n_global=1, n_local=0)  # temporal views: one draw per frame
    if cfg.temporal and train.episodes is None:
        log.warning("pretrain: %s has no episodes (an image folder): temporal views off", cfg.data)
        cfg = replace(cfg, temporal=0)
    step, total = 0, cfg.steps
    if resume:
        _restore(state, meta, model, sigreg, opt, probe, gen, rng)
        step, total = int(meta["step"]), int(meta["total_steps"])
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    kept = []
    if resume and metrics_path.exists():  # drop lines a crashed run logged after its last save
        kept = [ln for ln in metrics_path.read_text().splitlines() if ln and json.loads(ln)["step"] <= step]
    atomic_write_text(metrics_path, "".join(ln + "\n" for ln in kept))
    base_meta = {"kind": "lejepa", "model": model.arch, "frame_size": size, "data": str(cfg.data),
                 "library_version": __version__}
    saved_at = step if resume else None

    def save(final: bool) -> None:
        nonlocal saved_at
        meta = {**base_meta, "config": to_dict(cfg), "step": step, "total_steps": total}
        _save(out, meta, model, sigreg, opt, probe, gen, rng, final)
        saved_at = step


    stop = min(total, cfg.stop_at) if cfg.stop_at else total
    bar = tqdm(total=total, initial=step, disable=not progress, desc="pretrain", unit="step")
    budget = 0.0 if resume else cfg.minutes * 60.0  # a resumed run finishes its fixed step count
    t0, timed = time.perf_counter(), None
    last: dict[str, float] = {}
    with open(metrics_path, "a") as mf:
        while step < stop:
            if budget and timed is None and step == 1:
                timed = time.perf_counter()  # step 0 pays one-off costs; time from step 1
            lr = lr_at(cfg, step, total)
            for group in opt.param_groups:
                group["lr"] = lr
            idx = rng.integers(0, len(train), cfg.batch_size)  # (B,)
            x = to_images(train.frames[idx])  # (B, 3, S, S)
            allv = _make_views(cfg, train, idx, x, views, one_view, gen, rng)  # (V, B, 3, S, S)
            v, b = allv.shape[:2]
            try:
                h, z = model(allv.reshape(v * b, 3, size, size))  # (V*B, E), (V*B, P)
                terms = _objective(cfg, z.view(v, b, -1), sigreg)
            except SIGRegError as e:
                raise PretrainError(_nan_message(step, lr, str(e), out, saved_at)) from None
            loss = float(terms["loss"].detach())
            if not math.isfinite(loss):
                raise PretrainError(_nan_message(step, lr, f"loss is {loss}", out, saved_at))
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            if probe is not None:  # on the clean frames: crops move the agent, the state does not
                with torch.no_grad():
                    h_clean = model.encode(x)  # (B, E); the encoder has no batch statistics
                probe.update(h_clean, targets[idx])
            step += 1
            bar.update(1)
            last = {f"train/{k}": float(t.detach()) for k, t in terms.items()}
            row: dict[str, Any] = {}
            if step % cfg.log_every == 0 or step == stop:
                row.update(last, **{"train/lr": lr})
            if step % cfg.probe_every == 0 or step == total:
                row.update(probe.report() if probe is not None else {})
                from ..eval.probes import rankme

                row["probe/rank"] = rankme(z.detach()[:b], center=True)  # projected view 0: (B, P)
            if row:
                mf.write(json.dumps({"step": step, "time_s": round(time.perf_counter() - t0, 2), **row}) + "\n")
                mf.flush()
                bar.set_postfix(loss=f"{loss:.4f}")
            if budget and timed is not None and step == 6:
                per = (time.perf_counter() - timed) / 5
                total = max(step + 1, int((budget - (time.perf_counter() - t0)) / per) + step)
                stop = min(total, cfg.stop_at) if cfg.stop_at else total
                bar.total = total
                log.info("pretrain: %.3f s/step -> %d steps in %.1f minutes", per, total, cfg.minutes)
            if budget and time.perf_counter() - t0 > budget * 1.05 and step < stop:
                log.warning("pretrain: time budget spent at step %d of %d", step, total)
                total = stop = step
            if step % cfg.save_every == 0 and step < stop:
                save(final=False)
    bar.close()
    done = step >= total
    save(final=done)
    result: dict[str, Any] = {"step": step, "total_steps": total, "seconds": time.perf_counter() - t0, **last}
    if done:
        from ..eval.probes import evaluate_encoder

        ev = evaluate_encoder(model, cfg.data, max_frames=cfg.eval_frames, seed=cfg.seed)
        atomic_write_text(out / "eval.json", json.dumps(ev, indent=2) + "\n")
        result["eval"] = ev
    return result


def _make_views(cfg: PretrainConfig, train: Any, idx: np.ndarray, x: Tensor, views: Any, one_view: Any,
                gen: Any, rng: np.random.Generator) -> Tensor:
    """The V = n_global + n_local views ``(V, B, 3, S, S)`` of the batch frames ``x`` (rows
    ``idx`` of ``train``): with ``cfg.temporal``, global view v > 0 is a frame up to that many
    steps away in the same episode (its own draw of noise etc.), local views come from ``x``."""
    import torch

    from ..augment import multi_view

    if not cfg.temporal:
        mv = multi_view(x, views, gen)
        return torch.cat([mv.global_views, mv.local_views]) if cfg.n_local else mv.global_views
    b, size = len(idx), x.shape[-1]
    off = rng.integers(-cfg.temporal, cfg.temporal + 1, (cfg.n_global, b))  # (G, B)
    off[0] = 0
    near = train.neighbours(idx[None], off[1:])  # (G-1, B); view 0 is x itself
    xs = torch.cat([x, to_images(train.frames[near.reshape(-1)])])  # (G*B, 3, S, S)
    glob = multi_view(xs, one_view, gen).global_views.reshape(cfg.n_global, b, 3, size, size)
    return torch.cat([glob, multi_view(x, views, gen).local_views]) if cfg.n_local else glob


def _save(out: Path, meta: dict[str, Any], model: Any, sigreg: Any, opt: Any, probe: _OnlineProbe | None,
          gen: Any, rng: np.random.Generator, final: bool) -> None:
    """Write ``model.safetensors`` (weights) and ``last.safetensors`` (everything a resume needs:
    optimizer, online probe, every RNG, SIGReg's step), each atomically."""
    import torch

    weights = _prefixed("model", model.state_dict())
    ckpt.save(out / ckpt.MODEL_FILE, weights, meta)
    t_opt, info = ckpt.flatten_optimizer(opt.state_dict())
    tensors = {**weights, **_prefixed("sigreg", sigreg.state_dict()), **t_opt,
               "rng/torch": torch.get_rng_state(), "rng/views": gen.get_state()}
    meta = {**meta, "optim": info, "np_rng": rng.bit_generator.state, "finished": final}
    if probe is not None:
        p_opt, pinfo = ckpt.flatten_optimizer(probe.opt.state_dict())
        tensors.update(_prefixed("probe", probe.head.state_dict()))
        tensors.update({"probe_" + k: v for k, v in p_opt.items()})
        meta.update(probe_optim=pinfo, probe_stats=probe.stats)
    ckpt.save(out / ckpt.RESUME_FILE, tensors, meta)


def _restore(state: dict[str, Tensor], meta: dict[str, Any], model: Any, sigreg: Any, opt: Any,
             probe: _OnlineProbe | None, gen: Any, rng: np.random.Generator) -> None:
    """The inverse of :func:`_save`: put every piece of ``last.safetensors`` back in place."""
    import torch

    model.load_state_dict(_unprefixed("model", state))
    sigreg.load_state_dict(_unprefixed("sigreg", state))
    opt.load_state_dict(ckpt.unflatten_optimizer(state, meta["optim"]))
    if probe is not None:
        probe.head.load_state_dict(_unprefixed("probe", state))
        pstate = {"optim/" + k: v for k, v in _unprefixed("probe_optim", state).items()}
        probe.opt.load_state_dict(ckpt.unflatten_optimizer(pstate, meta["probe_optim"]))
        probe.stats = list(meta["probe_stats"])
    torch.set_rng_state(state["rng/torch"])
    gen.set_state(state["rng/views"])
    rng.bit_generator.state = meta["np_rng"]


def _nan_message(step: int, lr: float, what: str, out: Path, saved_at: int | None) -> str:
    kept = (f"the checkpoints in {out} are from step {saved_at}" if saved_at is not None
            else "no checkpoint was written")
    return f"non-finite training at step {step} (lr {lr:.3g}): {what}; {kept}; lower --lr or check the data"
