"""The JEPA world model: encoder -> projector -> latent z, and an action-conditioned predictor.

Verbs (shapes as in ``worldjepa.protocols``; ``A`` here is the *macro* action size
``frameskip * action_dim``, the actions of the ``k`` env steps between two model steps):

* ``encode(frames, proprio=None)``: uint8 ``(..., H, W, 3)`` or float ``(..., 3, H, W)`` in
  [0, 1] -> ``(..., D)``;
* ``predict(z (B, T, D), a (B, T, A)) -> (B, T, D)``: output ``t`` predicts ``z[t + 1]``;
* ``rollout(z_hist (B, Th, D), a_hist (B, Th-1, A), actions (B, S, H, A)) -> (B, S, H, D)``;
* ``forecast(z_hist (B, Th, D), horizon) -> (B, H, D)``: an action-free model's future;
* ``loss(actions, frames=... | features=..., proprio=...) -> dict``: teacher-forced
  next-embedding error + an optional open-loop rollout error + ``reg_weight`` x regulariser.

An **action-free** model (``action_free=True``, ``worldjepa train --action-free``) learns from
video alone: every action it is given is replaced by zeros, and the predictor's weights that
read the raw action (``predictor.action_input()``) are zero and stay zero (their gradient
is zero when the action is). The action pathway is there but contributes nothing, as in
DINO-world; loaded into a model with ``action_free=False`` (``worldjepa train --init-from``)
the same weights predict exactly the same at first, whatever the actions, and fine-tuning
grows the action pathway from zero.

The model is assembled from parts passed in (encoder, projector, predictor, regulariser,
proprioception encoder, inverse-dynamics head), speaks tensors and has no I/O.
:func:`build_world_model` builds it from a :class:`~worldjepa.configs.ModelConfig` (the
``model`` entry of a checkpoint's metadata); :func:`load_world_model` reads a checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .configs import ModelConfig, parse_proprio
from .errors import CheckpointError, ConfigError, WorldJepaError
from .losses.prediction import prediction_error
from .nn import frames_to_float
from .nn._checks import check_weights, planned_state

__all__ = ["ModelConfig", "WorldModel", "build_world_model", "frames_to_float", "latent_fingerprint",
           "load_world_model", "model_fingerprint", "parse_proprio"]


class WorldModel(nn.Module):
    """Encoder + projector + predictor, and the loss of one batch of windows.

    Args:
        encoder: ``(N, 3, H, W)`` in [0, 1] -> ``(N, E)``.
        projector: ``(N, E)`` -> ``(N, Dv)``, with an ``out_dim`` attribute.
        predictor: obeys ``worldjepa.protocols.Predictor`` with action size ``frameskip * action_dim``.
        action_dim: env action size ``A`` (one env step).
        frameskip: env steps per model step ``k``.
        history: context length the agent keeps (model steps).
        regularizer: anti-collapse term on embeddings ``(B, T, Dv)`` -> 0-d tensor
            (:class:`~worldjepa.losses.SequenceSIGReg`, :class:`~worldjepa.losses.SequenceVICReg`),
            or ``None``.
        reg_weight: its weight (lambda).
        rollout_weight: weight of the open-loop rollout error.
        proprio: a :class:`~worldjepa.nn.ProprioEncoder` whose embedding is appended to the
            latent, or ``None`` for a pixels-only model.
        inverse: a :class:`~worldjepa.nn.InverseHead` (PLDM) or ``None``.
        inverse_weight: weight of its action error.
        action_free: learn and predict without actions (see the module docstring); the
            predictor's action input weights are zeroed here.
    """

    def __init__(self, encoder: nn.Module, projector: nn.Module, predictor: nn.Module, *, action_dim: int,
                 frameskip: int, history: int = 3, regularizer: nn.Module | None = None, reg_weight: float = 0.1,
                 rollout_weight: float = 1.0, proprio: nn.Module | None = None, inverse: nn.Module | None = None,
                 inverse_weight: float = 0.0, action_free: bool = False) -> None:
        super().__init__()
        self.encoder, self.projector, self.predictor = encoder, projector, predictor
        self.action_dim, self.frameskip, self.history = action_dim, frameskip, history
        self.macro_dim = action_dim * frameskip
        self.reg, self.reg_weight, self.rollout_weight = regularizer, reg_weight, rollout_weight
        self.proprio_enc, self.inverse, self.inverse_weight = proprio, inverse, inverse_weight
        self.action_free = action_free
        if action_free:
            if inverse is not None:
                raise ConfigError("an action-free model has no actions for an inverse-dynamics head to predict")
            self.zero_action_input()

    def zero_action_input(self) -> None:
        """Zero the predictor's weights that read the raw action: its predictions then ignore
        the actions (what an action-free model keeps)."""
        if not hasattr(self.predictor, "action_input"):
            raise ConfigError(f"{type(self.predictor).__name__} does not name its action input weights "
                              "(action_input()): it cannot be action-free")
        with torch.no_grad():
            for w in self.predictor.action_input():
                w.zero_()

    def _acts(self, a: Tensor) -> Tensor:
        """The actions the predictor sees: ``a`` itself, or zeros for an action-free model."""
        return torch.zeros_like(a) if self.action_free else a

    @property
    def visual_dim(self) -> int:
        """Size of the image part of the latent (the projector's output)."""
        return int(self.projector.out_dim)

    @property
    def latent_dim(self) -> int:
        """Size of the latent the predictor and the planner work in: image part + proprio embedding."""
        return self.visual_dim + (self.proprio_enc.out_dim if self.proprio_enc is not None else 0)

    @property
    def proprio(self) -> str:
        """The proprioceptive input's spec (``"state[2:4]"``), ``""`` for a pixels-only model."""
        return self.proprio_enc.spec if self.proprio_enc is not None else ""

    @property
    def proprio_key(self) -> str | None:
        """The dataset extra the proprioception comes from (``"state"``), ``None`` without."""
        return self.proprio_enc.key if self.proprio_enc is not None else None

    @property
    def proprio_dim(self) -> int:
        return self.proprio_enc.dim if self.proprio_enc is not None else 0

    def proprio_of(self, extras: dict[str, Any] | None) -> np.ndarray | None:
        """This model's proprioceptive input ``(..., P)`` from a dict of extras (a batch, an env
        step's ``info``); ``None`` for a pixels-only model."""
        return None if self.proprio_enc is None else self.proprio_enc.values(extras)

    def set_proprio_stats(self, values: np.ndarray) -> None:
        """Normalise the proprioceptive input by the mean and std of ``values`` ``(N, P)``."""
        self.proprio_enc.set_stats(values)

    def encode(self, frames: Any, proprio: Any = None) -> Tensor:
        """uint8 ``(..., H, W, 3)`` or float ``(..., 3, H, W)`` (+ ``proprio`` ``(..., P)`` for a
        model that takes it) -> ``(..., D)``."""
        w = next(self.parameters())  # inputs follow the weights' device and dtype
        x = frames_to_float(frames, w.device).to(w.dtype)  # (..., 3, H, W)
        h = self.encoder(x.reshape(-1, *x.shape[-3:]))  # (N, E)
        return self.embed_features(h.reshape(*x.shape[:-3], -1), proprio)

    def embed_features(self, h: Tensor, proprio: Any = None) -> Tensor:
        """The latent from encoder outputs ``h`` ``(..., E)`` (+ ``proprio`` ``(..., P)``): what
        :meth:`encode` does after the encoder (training on cached features of a frozen encoder)."""
        w = next(self.parameters())
        h = torch.as_tensor(h, device=w.device, dtype=w.dtype)
        lead = h.shape[:-1]
        z = self.projector(h.reshape(-1, h.shape[-1])).reshape(*lead, -1)  # (..., Dv)
        if self.proprio_enc is None:
            return z
        if proprio is None:
            raise WorldJepaError(f"this model takes proprioception {self.proprio!r} with every frame; got none")
        p = torch.as_tensor(proprio, dtype=w.dtype, device=w.device)
        if tuple(p.shape) != (*lead, self.proprio_dim):
            raise WorldJepaError(f"proprio must be {(*lead, self.proprio_dim)} for these frames, got {tuple(p.shape)}")
        if not torch.isfinite(p).all():
            raise WorldJepaError("proprio contains NaN or inf")
        return torch.cat([z, self.proprio_enc(p)], dim=-1)  # (..., Dv + Dp)

    def predict(self, z: Tensor, a: Tensor) -> Tensor:
        """Teacher-forced: z ``(B, T, D)``, macro actions a ``(B, T, A)`` -> ``(B, T, D)``."""
        return self.predictor(z, self._acts(a))

    def rollout(self, z_hist: Tensor, a_hist: Tensor, actions: Tensor) -> Tensor:
        """``(B, Th, D)``, ``(B, Th-1, A)``, ``(B, S, H, A)`` -> ``(B, S, H, D)`` imagined embeddings."""
        return self.predictor.rollout(z_hist, self._acts(a_hist), self._acts(actions))

    def forecast(self, z_hist: Tensor, horizon: int) -> Tensor:
        """An action-free model's forecast: the ``horizon`` embeddings after the history
        ``(B, Th, D)`` -> ``(B, H, D)``. An action-conditioned model needs the actions:
        :meth:`rollout`."""
        if not self.action_free:
            raise WorldJepaError("forecast() is for action-free models (worldjepa train --action-free); an "
                                 "action-conditioned model's future depends on the actions: use rollout()")
        if horizon < 1:
            raise WorldJepaError(f"forecast horizon must be >= 1, got {horizon}")
        b, th, _ = z_hist.shape
        zeros = z_hist.new_zeros(b, max(th - 1, 0), self.macro_dim)  # (B, Th-1, A)
        return self.rollout(z_hist, zeros, z_hist.new_zeros(b, 1, horizon, self.macro_dim))[:, 0]  # (B, H, D)

    def loss(self, actions: Tensor, *, frames: Any = None, features: Tensor | None = None,
             proprio: Tensor | None = None) -> dict[str, Tensor]:
        """Loss of a batch of windows.

        Args:
            actions: ``(B, T, A)`` macro actions (``actions[:, t]`` leads from frame ``t`` to
                ``t + 1``; the last one is unused; an action-free model ignores them).
            frames: ``(B, T, H, W, 3)`` uint8 or ``(B, T, 3, H, W)`` float; or
            features: ``(B, T, E)`` cached outputs of a frozen encoder, instead of frames.
            proprio: ``(B, T, P)`` for a model with proprioception.

        Returns ``{"loss", "pred", "rollout", "reg"}`` (0-d tensors): ``pred`` the teacher-forced
        next-embedding error, ``rollout`` the error of predictions made open-loop from the first
        embedding over the whole window (both :func:`~worldjepa.losses.prediction_error`, MSE),
        ``reg`` the regulariser's value; with an inverse head also ``inverse``, the MSE of the
        actions predicted from consecutive embeddings.
        """
        w = next(self.parameters())
        a = torch.as_tensor(actions, dtype=w.dtype, device=w.device)  # (B, T, A)
        if (frames is None) == (features is None):
            raise WorldJepaError("WorldModel.loss takes frames or features (cached encoder outputs), not both")
        z = self.encode(frames, proprio) if features is None else self.embed_features(features, proprio)  # (B, T, D)
        if z.shape[1] < 2:
            raise WorldJepaError(f"a training window needs T >= 2 frames, got {z.shape[1]}")
        target = z[:, 1:]  # (B, T-1, D)
        pred = prediction_error(self.predict(z[:, :-1], a[:, :-1]), target, reduction="mean")  # teacher-forced
        loss = pred
        roll = z.new_zeros(())
        if self.rollout_weight > 0 and z.shape[1] > 2:
            imagined = self.rollout(z[:, :1], a[:, :0], a[:, None, :-1])[:, 0]  # (B, T-1, D)
            roll = prediction_error(imagined, target, reduction="mean")
            loss = loss + self.rollout_weight * roll
        # the image part only: the proprio part cannot collapse
        reg = self.reg(z[..., :self.visual_dim]) if self.reg is not None else z.new_zeros(())
        loss = loss + self.reg_weight * reg
        out = {"loss": loss, "pred": pred, "rollout": roll, "reg": reg}
        if self.inverse is not None:
            inv = F.mse_loss(self.inverse(z[:, :-1], target), a[:, :-1])
            out["inverse"] = inv
            out["loss"] = loss + self.inverse_weight * inv
        return out

    def forward(self, actions: Tensor, **inputs: Any) -> dict[str, Tensor]:
        """Same as :meth:`loss` (so DDP's gradient hooks see the whole computation)."""
        return self.loss(actions, **inputs)


def build_world_model(cfg: ModelConfig) -> WorldModel:
    """The :class:`WorldModel` a config describes; ``frame_size`` and ``action_dim`` must be set."""
    from .losses import SequenceSIGReg, SequenceVICReg
    from .nn import InverseHead, ProprioEncoder, Projector, build_predictor, encoder_from_config

    if cfg.frame_size < 8 or cfg.action_dim < 1:
        raise ConfigError(f"model config needs frame_size and action_dim from the dataset, got "
                          f"frame_size={cfg.frame_size}, action_dim={cfg.action_dim}")
    encoder = encoder_from_config(cfg.encoder, cfg.frame_size)
    projector = Projector(cfg.encoder.dim, hidden_dim=cfg.projector_hidden, layers=cfg.projector_layers,
                          out_dim=cfg.latent_dim if cfg.projector_layers else cfg.encoder.dim)
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
    reg = {"sigreg": lambda: SequenceSIGReg(num_slices=cfg.sigreg_slices), "vicreg": SequenceVICReg,
           "none": lambda: None}[cfg.regularizer]()
    proprio = ProprioEncoder(cfg.proprio, cfg.proprio_dim, cfg.proprio_emb) if cfg.proprio else None
    inverse = InverseHead(dim, macro) if cfg.inverse_weight > 0 else None
    return WorldModel(encoder, projector, predictor, action_dim=cfg.action_dim, frameskip=cfg.frameskip,
                      history=cfg.history, regularizer=reg, reg_weight=cfg.reg_weight,
                      rollout_weight=cfg.rollout_weight, proprio=proprio, inverse=inverse,
                      inverse_weight=cfg.inverse_weight, action_free=cfg.action_free)


# weights renamed since the first checkpoints (library 0.1.0, before the model was built from parts)
_RENAMED = {"proprio_enc.weight": "proprio_enc.linear.weight", "proprio_enc.bias": "proprio_enc.linear.bias",
            "proprio_mean": "proprio_enc.mean", "proprio_std": "proprio_enc.std"}


def model_weights(tensors: dict[str, Tensor], prefix: str = "model/") -> dict[str, Tensor]:
    """The world model's state dict from a checkpoint's tensors (older weight names mapped)."""
    out = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    return {_RENAMED.get(k, k): v for k, v in out.items()}


def load_world_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[WorldModel, dict[str, Any]]:
    """``(WorldModel in eval mode, meta)`` from a checkpoint file or run directory."""
    from . import checkpoint as ckpt
    from .config import from_dict

    tensors, meta = ckpt.load(path)
    if not isinstance(meta.get("model"), dict) or meta.get("kind", "world_model") != "world_model":
        raise CheckpointError(f"{path} is a worldjepa checkpoint without a world model (kind {meta.get('kind')!r})")
    try:
        cfg = from_dict(ModelConfig, meta["model"])
    except ConfigError as e:
        raise CheckpointError(f"{path}: its model config is invalid: {e}") from None
    weights = model_weights(tensors)
    # the config's shapes, computed without allocating, must be the file's before anything is built
    check_weights(str(path), planned_state(lambda: build_world_model(cfg)), {k: tuple(v.shape) for k, v in weights.items()})
    model = build_world_model(cfg)
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit its model config: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), meta


LATENT_PARTS = ("encoder", "projector", "proprio_enc")  # what makes a frame's embedding; the predictor does not


def model_fingerprint(model: nn.Module, parts: tuple[str, ...] | None = None) -> str:
    """16 hex digits of a SHA-256 over the model's state dict (names, shapes, dtypes, values):
    what a memory of embeddings must match, whatever file the weights came from. ``parts``
    (names of sub-modules) hashes those only: see :func:`latent_fingerprint`."""
    import hashlib

    state = model.state_dict()
    if parts is not None:
        state = {k: v for k, v in state.items() if k.split(".", 1)[0] in parts}
    h = hashlib.sha256()
    for name, t in sorted(state.items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def latent_fingerprint(model: nn.Module) -> str:
    """The fingerprint of what embeds a frame (encoder, projector, proprioception): equal for
    runs whose predictors differ but whose latent is the same (``worldjepa train --init-from RUN
    --predictor-only``), so that they can plan as an ensemble with one long-term memory."""
    return model_fingerprint(model, LATENT_PARTS)
