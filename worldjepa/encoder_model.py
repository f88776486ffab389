"""The model ``worldjepa pretrain`` trains: an image encoder + a BatchNorm projector (LeJEPA),
and the frozen-encoder probes that judge it (:func:`evaluate_encoder`).

The encoder's embeddings are what probes read and what a world model starts from
(``worldjepa train --encoder-init RUN``); the projector's outputs are where SIGReg acts.
A checkpoint of kind ``"lejepa"`` records the architecture in ``meta["model"]``:
``{"encoder": EncoderConfig, "size": S, "projector_hidden": W, "projector_dim": P}``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .configs import EncoderConfig, PretrainConfig
from .errors import CheckpointError

__all__ = ["EncoderModel", "build_encoder_model", "embed", "evaluate_encoder", "format_table", "load_encoder_model",
           "read_encoder"]


class EncoderModel(nn.Module):
    """Encoder + BatchNorm projector: frames (B, 3, S, S) in [0, 1] -> (B, E) and (B, P)."""

    def __init__(self, encoder: EncoderConfig, size: int, projector_hidden: int = 512, projector_dim: int = 16):
        super().__init__()
        from .nn import Projector, encoder_from_config

        self.encoder_config, self.size = encoder, size
        self.arch = {"encoder": dataclasses.asdict(encoder), "size": size, "projector_hidden": projector_hidden,
                     "projector_dim": projector_dim}
        self.encoder = encoder_from_config(encoder, size)
        self.projector = Projector(encoder.dim, projector_hidden, projector_dim)

    def encode(self, frames: Tensor) -> Tensor:
        """(B, 3, S, S) -> (B, E) embeddings (what probes and downstream models read)."""
        return self.encoder(frames)

    def forward(self, frames: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(frames)  # (B, E)
        return h, self.projector(h)  # (B, E), (B, P)


def build_encoder_model(cfg: PretrainConfig, size: int) -> EncoderModel:
    """The :class:`EncoderModel` a pretraining config describes, for frames of side ``size``."""
    return EncoderModel(cfg.encoder, size, cfg.projector_hidden, cfg.projector_dim)


def _arch(meta: dict[str, Any], tensors: dict[str, Tensor], where: Any = "") -> dict[str, Any]:
    """The architecture of a ``lejepa`` checkpoint (the flat one of library 0.1.0 converted),
    checked against the shapes of its weights before anything is built."""
    from .config import from_dict
    from .errors import ConfigError
    from .nn._checks import check_weights, planned_state

    try:
        arch = dict(meta["model"])
        if isinstance(arch.get("encoder"), str):  # 0.1.0: encoder, embed_dim, channels, keypoints, proj_*
            kind = arch["encoder"]
            patch = int(tensors["model/encoder.patch_embed.weight"].shape[-1]) if kind == "vit_tiny" else 8
            arch = {"encoder": {"kind": kind, "dim": arch["embed_dim"], "channels": arch["channels"],
                                "keypoints": arch.get("keypoints", 0), "patch": patch},
                    "size": arch["size"], "projector_hidden": arch["proj_hidden"], "projector_dim": arch["proj_dim"]}
        arch["encoder"] = from_dict(EncoderConfig, arch["encoder"])
        if set(arch) != {"encoder", "size", "projector_hidden", "projector_dim"}:
            raise KeyError(", ".join(sorted(set(arch) ^ {"encoder", "size", "projector_hidden", "projector_dim"})))
        for key in ("size", "projector_hidden", "projector_dim"):
            if not isinstance(arch[key], int) or isinstance(arch[key], bool) or arch[key] < 1:
                raise ValueError(f"{key} {arch[key]!r}")
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise CheckpointError(f"{where}: its model architecture is invalid ({e})") from None
    got = {k[len("model/"):]: tuple(v.shape) for k, v in tensors.items() if k.startswith("model/")}
    check_weights(str(where), planned_state(lambda: EncoderModel(**arch)), got)
    return arch


def load_encoder_model(run: str | Path) -> tuple[EncoderModel, dict[str, Any]]:
    """A trained model (eval mode) and its metadata from a run directory or checkpoint file."""
    from . import checkpoint as ckpt

    tensors, meta = ckpt.load(run)
    if meta.get("kind") != "lejepa":
        raise CheckpointError(f"{run} is not a LeJEPA pretraining checkpoint (kind {meta.get('kind')!r})")
    model = EncoderModel(**_arch(meta, tensors, run))
    model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
    return model.eval(), meta


def read_encoder(run: str | Path) -> tuple[dict[str, Tensor], EncoderConfig, int]:
    """The encoder weights of a ``worldjepa pretrain`` run, its :class:`EncoderConfig` and the
    frame side it reads; a clear error for another kind of checkpoint."""
    from . import checkpoint as ckpt

    tensors, meta = ckpt.load(run)
    if meta.get("kind") != "lejepa":
        raise CheckpointError(f"--encoder-init {run}: not a `worldjepa pretrain` run (its kind is "
                              f"{meta.get('kind')!r}); pass the directory `worldjepa pretrain --out` wrote")
    arch = _arch(meta, tensors, run)
    prefix = "model/encoder."
    weights = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return weights, arch["encoder"], int(arch["size"])


def embed(model: Any, frames: np.ndarray, batch_size: int = 256) -> Tensor:
    """Encoder embeddings of uint8 frames (N, H, W, 3) -> (N, E), eval mode, no gradient."""
    from .nn import frames_to_float

    was = model.training
    model.eval()
    w = next(model.parameters())
    with torch.no_grad():
        out = [model.encode(frames_to_float(frames[i:i + batch_size], w.device).to(w.dtype)).cpu()
               for i in range(0, len(frames), batch_size)]
    model.train(was)
    return torch.cat(out)  # (N, E)


def evaluate_encoder(run_or_model: Any, data: str | Path,
                     max_frames: int = 4000, k: int = 20, seed: int = 0) -> dict[str, Any]:
    """Frozen-encoder probes of a LeJEPA model (or run directory / checkpoint) on ``data``.

    Embeddings are the encoder's (before the projector), in eval mode;
    probes are fitted on train-split frames and scored on test-split frames.

    Returns ``eval/r2`` (ridge regression of the state, mean over state dimensions, with
    ``eval/r2_per_target``) when the data has states; ``eval/knn_acc`` and
    ``eval/linear_acc`` when it has labels (k-NN with ``k``, at most a quarter of the
    training frames); always ``eval/rank`` (centred RankMe of the projected
    test embeddings, where SIGReg acts: between 1 = collapsed and min(M, P)),
    ``eval/rank_embed`` (centred RankMe of the encoder's test embeddings), ``eval/proj_std``
    (mean per-dimension std of the projected test embeddings: RankMe is scale-free, so a
    collapse of scale shows here, not there) and the counts.
    """
    from .data.images import load_frames
    from .metrics import knn_accuracy, linear_accuracy, linear_r2, rankme

    if isinstance(run_or_model, torch.nn.Module):
        model = run_or_model
    else:
        model = load_encoder_model(run_or_model)[0]
    size = model.arch["size"]
    tr = load_frames(data, "train", size, max_frames, seed)
    te = load_frames(data, "test", size, max_frames, seed + 1)
    z_tr, z_te = embed(model, tr.frames), embed(model, te.frames)  # (N, E), (M, E)
    with torch.no_grad():
        p_te = model.eval().projector(z_te.to(next(model.parameters()).device)).cpu()  # (M, P) where SIGReg acts
    out: dict[str, Any] = {"eval/n_train": len(tr), "eval/n_test": len(te),
                           "eval/rank": rankme(p_te, center=True), "eval/rank_embed": rankme(z_te, center=True),
                           "eval/proj_std": float(p_te.std(0).mean())}
    if tr.states is not None:
        r = linear_r2(z_tr, tr.states, z_te, te.states)
        out["eval/r2"], out["eval/r2_per_target"] = r["r2"], r["r2_per_target"]
    if tr.labels is not None:
        out["eval/knn_acc"] = knn_accuracy(z_tr, tr.labels, z_te, te.labels, k=max(1, min(k, len(tr) // 4)))
        out["eval/linear_acc"] = linear_accuracy(z_tr, tr.labels, z_te, te.labels)
    return out


def format_table(result: dict[str, Any]) -> str:
    """A markdown table of an :func:`evaluate_encoder` result (one row per metric)."""
    rows = [("metric", "value"), ("---", "---")]
    for key, v in result.items():
        if isinstance(v, float):
            v = f"{v:.4f}"
        elif isinstance(v, list):
            v = "[" + ", ".join(f"{x:.4f}" for x in v) + "]"
        rows.append((key, str(v)))
    return "\n".join(f"| {a} | {b} |" for a, b in rows)
