"""The JEPA world model: encoder -> projector -> latent z, and an action-conditioned predictor.

Verbs (shapes as in ``worldjepa.protocols``; ``A`` here is the *macro* action size
``frameskip * action_dim``, the actions of the ``k`` env steps between two model steps):

* ``encode(frames)``: uint8 ``(..., H, W, 3)`` or float ``(..., 3, H, W)`` in [0, 1] -> ``(..., D)``;
* ``predict(z (B, T, D), a (B, T, A)) -> (B, T, D)``: output ``t`` predicts ``z[t + 1]``;
* ``rollout(z_hist (B, Th, D), a_hist (B, Th-1, A), actions (B, S, H, A)) -> (B, S, H, D)``;
* ``loss(batch) -> dict``: teacher-forced next-embedding MSE + an optional open-loop
  rollout MSE + ``reg_weight`` x regulariser (SIGReg per time step, VICReg, or none).

The model has no I/O; :func:`build_world_model` rebuilds it exactly from a
:class:`ModelConfig` (the ``model`` entry of a checkpoint's metadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import opt
from .errors import ConfigError, WorldJepaError


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and objective of a world model (saved in every checkpoint)."""

    encoder: Literal["cnn", "vit_tiny"] = opt("cnn", "encoder: cnn (CPU default) | vit_tiny")
    encoder_dim: int = opt(256, "encoder output size (before the projector)")
    channels: tuple[int, ...] = opt((8, 16, 32, 64), "CNN channels, one stride-2 conv per entry")
    keypoints: int = opt(0, "CNN spatial-softmax keypoints K: the last 2K encoder outputs are K expected (x, y) "
                            "positions (taken from the --encoder-init run when given)")
    patch: int = opt(8, "ViT patch size in pixels (vit_tiny only)")
    latent_dim: int = opt(64, "latent size D (projector output; what the planner compares)")
    projector_hidden: int = opt(512, "projector hidden width (BatchNorm MLP)")
    projector_layers: int = opt(2, "projector linear layers; 0 = no projector: the latent is the encoder's "
                                   "output, each dimension standardised (latent_dim is then encoder_dim), as "
                                   "DINO-WM plans on frozen DINOv2 features; meant for --freeze-encoder")
    predictor: Literal["mlp", "transformer", "gru"] = opt("mlp", "predictor: mlp | transformer | gru")
    preset: str = opt("", "transformer size preset: tiny | small | lewm (transformer only)")
    predictor_hidden: int = opt(128, "hidden width of the mlp / gru predictor")
    predictor_layers: int = opt(3, "linear layers of the mlp predictor (>= 2)")
    history: int = opt(3, "model steps of context: the transformer's attention window and the "
                          "agent's memory of observed embeddings")
    frameskip: int = opt(5, "env steps per model step; the predictor sees frameskip x A actions")
    regularizer: Literal["sigreg", "vicreg", "none"] = opt(
        "sigreg", "anti-collapse term: sigreg | vicreg | none (none = the collapse ablation)")
    reg_weight: float = opt(0.1, "weight lambda of the regulariser")
    sigreg_slices: int = opt(512, "random 1-D projections per SIGReg step")
    rollout_weight: float = opt(1.0, "weight of the open-loop rollout MSE (0 = teacher-forced only)")
    inverse_weight: float = opt(0.0, "weight of a PLDM-style inverse-dynamics term: an MLP predicts the "
                                     "macro action from (z_t, z_t+1); 0 = off (PLDM variant: "
                                     "regularizer=vicreg inverse_weight=1)")
    proprio: str = opt("", "proprioceptive input: a dataset extra and optional slice, e.g. 'state[2:4]' "
                           "(PointMaze's velocity) or 'obs'; embedded and appended to the latent. "
                           "'' = pixels only")
    proprio_emb: int = opt(16, "size of the proprioceptive embedding appended to the latent")
    freeze_encoder: bool = opt(False, "keep the encoder's weights fixed in training (with --encoder-init: a frozen "
                                      "pretrained encoder, as DINO-WM freezes DINOv2); projector and predictor learn")
    proprio_dim: int = opt(0, "proprioceptive values per frame (filled from the dataset)")
    frame_size: int = opt(0, "frame side in pixels (filled from the dataset)")
    action_dim: int = opt(0, "env action size A (filled from the dataset's action space)")

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.encoder_dim < 1 or self.history < 1 or self.frameskip < 1:
            raise ConfigError("latent_dim, encoder_dim, history and frameskip must be >= 1")
        if self.projector_layers < 0:
            raise ConfigError(f"projector_layers must be >= 0 (0 = no projector), got {self.projector_layers}")
        if self.reg_weight < 0 or self.rollout_weight < 0 or self.inverse_weight < 0:
            raise ConfigError("reg_weight, rollout_weight and inverse_weight must be >= 0")
        if self.proprio:
            parse_proprio(self.proprio)  # a clear error now, not at the first batch
            if self.proprio_emb < 1:
                raise ConfigError("proprio_emb must be >= 1")
        if self.keypoints and self.encoder != "cnn":
            raise ConfigError(f"keypoints are an option of the cnn encoder, not {self.encoder}")
        if self.preset and self.predictor != "transformer":
            raise ConfigError(f"preset {self.preset!r} sizes the transformer predictor, not {self.predictor!r}")


def parse_proprio(spec: str) -> tuple[str, slice]:
    """``'state[2:4]'`` -> ``("state", slice(2, 4))``; ``'obs'`` -> ``("obs", slice(None))``."""
    import re

    m = re.fullmatch(r"\s*([A-Za-z_][\w/]*)\s*(?:\[\s*(-?\d*)\s*:\s*(-?\d*)\s*\])?\s*", spec)
    if not m:
        raise ConfigError(f"proprio {spec!r}: expected an extras name and optional slice, e.g. 'state[2:4]' or 'obs'")
    lo, hi = m.group(2), m.group(3)
    return m.group(1), slice(int(lo) if lo else None, int(hi) if hi else None)


def frames_to_float(frames: Any, device: torch.device | str | None = None) -> Tensor:
    """uint8 ``(..., H, W, 3)`` (numpy or torch) -> float ``(..., 3, H, W)`` in [0, 1];
    float ``(..., 3, H, W)`` passes through (moved to ``device``)."""
    if isinstance(frames, np.ndarray):
        frames = np.ascontiguousarray(frames) if frames.flags.writeable else np.array(frames)
    x = torch.as_tensor(frames)
    if x.dtype == torch.uint8:
        if x.dim() < 3 or x.shape[-1] != 3:
            raise WorldJepaError(f"uint8 frames must be (..., H, W, 3), got {tuple(x.shape)}")
        x = x.to(device).movedim(-1, -3)  # (..., 3, H, W)
        return x.float() / 255.0
    if not x.is_floating_point() or x.dim() < 3 or x.shape[-3] != 3:
        raise WorldJepaError(f"frames must be uint8 (..., H, W, 3) or float (..., 3, H, W), "
                             f"got {x.dtype} {tuple(x.shape)}")
    return x.to(device)


class WorldModel(nn.Module):
    """Encoder + projector + predictor, and the loss of one batch of windows.

    Args:
        encoder: ``(N, 3, H, W)`` in [0, 1] -> ``(N, E)``.
        projector: ``(N, E)`` -> ``(N, D)``.
        predictor: obeys ``worldjepa.protocols.Predictor`` with action size ``frameskip * action_dim``.
        action_dim: env action size ``A`` (one env step).
        frameskip: env steps per model step ``k``.
        regularizer: ``"sigreg"``, ``"vicreg"`` or ``"none"``.
        reg_weight: its weight (lambda).
        rollout_weight: weight of the open-loop rollout MSE.
        sigreg_slices: SIGReg directions per step.
        history: context length the agent keeps (model steps).
        inverse_weight: weight of the inverse-dynamics MSE (PLDM); 0 builds no head.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, predictor: nn.Module, action_dim: int,
                 frameskip: int, *, regularizer: str = "sigreg", reg_weight: float = 0.1,
                 rollout_weight: float = 1.0, sigreg_slices: int = 512, history: int = 3,
                 inverse_weight: float = 0.0, proprio: str = "", proprio_dim: int = 0,
                 proprio_emb: int = 16) -> None:
        super().__init__()
        from .losses import SIGReg, VICReg

        self.encoder, self.projector, self.predictor = encoder, projector, predictor
        self.action_dim, self.frameskip, self.history = action_dim, frameskip, history
        self.macro_dim = action_dim * frameskip
        self.reg_weight, self.rollout_weight = reg_weight, rollout_weight
        self.regularizer = regularizer
        if regularizer == "sigreg":
            self.reg: nn.Module | None = SIGReg(num_slices=sigreg_slices)
        elif regularizer == "vicreg":
            self.reg = VICReg()
        elif regularizer == "none":
            self.reg = None
        else:
            raise ConfigError(f"unknown regularizer {regularizer!r}; choose sigreg | vicreg | none")
        self.inverse_weight = inverse_weight
        self.proprio, self.proprio_dim = proprio, proprio_dim
        self.proprio_enc: nn.Module | None = None
        if proprio:
            if proprio_dim < 1:
                raise ConfigError(f"proprio {proprio!r} needs proprio_dim >= 1 (filled from the dataset)")
            self.proprio_key, self.proprio_slice = parse_proprio(proprio)
            self.proprio_enc = nn.Linear(proprio_dim, proprio_emb)
            # normalisation of the raw values (set from the training data; saved with the weights)
            self.register_buffer("proprio_mean", torch.zeros(proprio_dim))
            self.register_buffer("proprio_std", torch.ones(proprio_dim))
        d = self.latent_dim
        # PLDM's inverse-dynamics head: (z_t, z_t+1) -> the macro action between them. It keeps
        # the embedding informative about what the agent controls; never used for planning.
        self.inverse: nn.Module | None = (
            nn.Sequential(nn.Linear(2 * d, 256), nn.GELU(), nn.Linear(256, self.macro_dim))
            if inverse_weight > 0 else None)

    @property
    def visual_dim(self) -> int:
        """Size of the image part of the latent (the projector's output)."""
        return int(self.projector.out_dim)

    @property
    def latent_dim(self) -> int:
        """Size of the latent the predictor and the planner work in: image part + proprio embedding."""
        return self.visual_dim + (int(self.proprio_enc.out_features) if self.proprio_enc is not None else 0)

    def proprio_of(self, extras: dict[str, Any]) -> Any:
        """This model's proprioceptive input from a dict of extras (a batch, an env step's
        ``info``): ``extras[key][..., slice]``; ``None`` for a pixels-only model."""
        if self.proprio_enc is None:
            return None
        value = extras.get(self.proprio_key) if extras is not None else None
        if value is None:
            raise WorldJepaError(f"this model takes proprioception {self.proprio!r}: pass the "
                                 f"'{self.proprio_key}' values along with the frames")
        value = np.asarray(value.detach().cpu() if torch.is_tensor(value) else value, np.float32)
        value = value[..., self.proprio_slice]  # (..., P): one vector per frame
        if value.ndim == 0 or value.shape[-1] != self.proprio_dim:
            raise WorldJepaError(f"proprio {self.proprio!r}: expected {self.proprio_dim} values per frame, "
                                 f"got shape {value.shape}")
        return value

    def set_proprio_stats(self, values: np.ndarray) -> None:
        """Normalise the proprioceptive input by the mean and std of ``values`` ``(N, P)``."""
        v = torch.as_tensor(np.asarray(values, np.float64).reshape(-1, self.proprio_dim))
        self.proprio_mean.copy_(v.mean(0).float())
        self.proprio_std.copy_(v.std(0).clamp_min(1e-6).float())

    def encode(self, frames: Any, proprio: Any = None) -> Tensor:
        """uint8 ``(..., H, W, 3)`` or float ``(..., 3, H, W)`` (+ ``proprio`` ``(..., P)`` for a
        model that takes it) -> ``(..., D)``."""
        device = next(self.parameters()).device
        x = frames_to_float(frames, device)  # (..., 3, H, W)
        h = self.encoder(x.reshape(-1, *x.shape[-3:]))  # (N, E)
        return self.embed_features(h.reshape(*x.shape[:-3], -1), proprio)

    def embed_features(self, h: Tensor, proprio: Any = None) -> Tensor:
        """The latent from encoder outputs ``h`` ``(..., E)`` (+ ``proprio`` ``(..., P)``): what
        :meth:`encode` does after the encoder (training on cached features of a frozen encoder)."""
        device = next(self.parameters()).device
        h = torch.as_tensor(h, device=device)
        lead = h.shape[:-1]
        z = self.projector(h.reshape(-1, h.shape[-1])).reshape(*lead, -1)  # (..., Dv)
        if self.proprio_enc is None:
            return z
        if proprio is None:
            raise WorldJepaError(f"this model takes proprioception {self.proprio!r} with every frame; got none")
        p = torch.as_tensor(np.asarray(proprio, np.float32) if not torch.is_tensor(proprio) else proprio,
                            dtype=torch.float32, device=device)
        if tuple(p.shape) != (*lead, self.proprio_dim):
            raise WorldJepaError(f"proprio must be {(*lead, self.proprio_dim)} for these frames, got {tuple(p.shape)}")
        if not torch.isfinite(p).all():
            raise WorldJepaError("proprio contains NaN or inf")
        e = self.proprio_enc((p - self.proprio_mean) / self.proprio_std)  # (..., Dp)
        return torch.cat([z, e], dim=-1)  # (..., Dv + Dp)

    def predict(self, z: Tensor, a: Tensor) -> Tensor:
        """Teacher-forced: z ``(B, T, D)``, macro actions a ``(B, T, A)`` -> ``(B, T, D)``."""
        return self.predictor(z, a)

    def rollout(self, z_hist: Tensor, a_hist: Tensor, actions: Tensor) -> Tensor:
        """``(B, Th, D)``, ``(B, Th-1, A)``, ``(B, S, H, A)`` -> ``(B, S, H, D)`` imagined embeddings."""
        return self.predictor.rollout(z_hist, a_hist, actions)

    def regularize(self, z: Tensor) -> Tensor:
        """The regulariser on embeddings ``(B, T, D)``: SIGReg per time step (``(T, B, D)``
        groups), VICReg variance + covariance on all ``B * T``; 0 for ``"none"``."""
        if self.reg is None:
            return z.new_zeros(())
        if self.regularizer == "sigreg":
            return self.reg(z.transpose(0, 1))  # groups of B samples, one per time step
        return self.reg(z.reshape(-1, z.shape[-1]))["loss"]

    def loss(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Loss of a batch of windows: ``frames`` ``(B, T, H, W, 3)`` uint8 (or float
        ``(B, T, 3, H, W)``), ``actions`` ``(B, T, A)`` macro actions (``actions[:, t]`` leads
        from frame ``t`` to ``t + 1``; the last one is unused).

        Returns ``{"loss", "pred", "rollout", "reg"}`` (0-d tensors): ``pred`` is the
        teacher-forced next-embedding MSE, ``rollout`` the MSE of predictions made open-loop
        from the first embedding over the whole window, ``reg`` the regulariser value; with
        ``inverse_weight > 0`` also ``inverse``, the MSE of the actions predicted from
        consecutive embeddings.
        """
        device = next(self.parameters()).device
        a = torch.as_tensor(batch["actions"]).to(device=device, dtype=torch.float32)  # (B, T, A)
        if "features" in batch:  # cached outputs of a frozen encoder
            z = self.embed_features(batch["features"], self.proprio_of(batch))  # (B, T, D)
        else:
            z = self.encode(batch["frames"], self.proprio_of(batch))  # (B, T, D)
        if z.shape[1] < 2:
            raise WorldJepaError(f"a training window needs T >= 2 frames, got {z.shape[1]}")
        target = z[:, 1:]  # (B, T-1, D)
        pred = F.mse_loss(self.predict(z[:, :-1], a[:, :-1]), target)  # teacher-forced
        loss = pred
        roll = z.new_zeros(())
        if self.rollout_weight > 0 and z.shape[1] > 2:
            imagined = self.rollout(z[:, :1], a[:, :0], a[:, None, :-1])[:, 0]  # (B, T-1, D)
            roll = F.mse_loss(imagined, target)
            loss = loss + self.rollout_weight * roll
        reg = self.regularize(z[..., :self.visual_dim])  # the image part: the proprio part cannot collapse
        loss = loss + self.reg_weight * reg
        out = {"loss": loss, "pred": pred, "rollout": roll, "reg": reg}
        if self.inverse is not None:
            inv = F.mse_loss(self.inverse(torch.cat([z[:, :-1], target], -1)), a[:, :-1])
            out["inverse"] = inv
            out["loss"] = loss + self.inverse_weight * inv
        return out

    def forward(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """Same as :meth:`loss` (so DDP's gradient hooks see the whole computation)."""
        return self.loss(batch)


def build_world_model(cfg: ModelConfig) -> WorldModel:
    """The :class:`WorldModel` a config describes; ``frame_size`` and ``action_dim`` must be set."""
    from .nn import Projector, build_encoder, build_predictor

    if cfg.frame_size < 8 or cfg.action_dim < 1:
        raise ConfigError(f"model config needs frame_size and action_dim from the dataset, got "
                          f"frame_size={cfg.frame_size}, action_dim={cfg.action_dim}")
    if cfg.encoder == "cnn":
        encoder = build_encoder("cnn", size=cfg.frame_size, channels=tuple(cfg.channels), out_dim=cfg.encoder_dim,
                                keypoints=cfg.keypoints)
    else:
        encoder = build_encoder("vit_tiny", size=cfg.frame_size, patch=cfg.patch, out_dim=cfg.encoder_dim)
    projector = Projector(cfg.encoder_dim, hidden_dim=cfg.projector_hidden, layers=cfg.projector_layers,
                          out_dim=cfg.latent_dim if cfg.projector_layers else cfg.encoder_dim)
    macro = cfg.action_dim * cfg.frameskip
    dim = projector.out_dim + (cfg.proprio_emb if cfg.proprio else 0)  # what the predictor works in
    if cfg.predictor == "transformer":
        predictor = build_predictor("transformer", preset=cfg.preset or "small", dim=dim,
                                    action_dim=macro, history=cfg.history)
    elif cfg.predictor == "mlp":
        predictor = build_predictor("mlp", dim=dim, action_dim=macro, hidden=cfg.predictor_hidden,
                                    layers=cfg.predictor_layers)
    else:
        predictor = build_predictor("gru", dim=dim, action_dim=macro, hidden=cfg.predictor_hidden)
    return WorldModel(encoder, projector, predictor, cfg.action_dim, cfg.frameskip,
                      regularizer=cfg.regularizer, reg_weight=cfg.reg_weight,
                      rollout_weight=cfg.rollout_weight, sigreg_slices=cfg.sigreg_slices,
                      history=cfg.history, inverse_weight=cfg.inverse_weight, proprio=cfg.proprio,
                      proprio_dim=cfg.proprio_dim, proprio_emb=cfg.proprio_emb)
