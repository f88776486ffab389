"""``worldjepa train``: windows of a dataset -> the world-model loss, in the shared training loop.

The loop (:mod:`worldjepa.training.loop`) owns the run directory, budget, optimiser, guards
and exact resume; this module says what a world model trains on: windows of ``num_frames``
frames at the model's frame-skip (:class:`~worldjepa.data.windows.WindowDataset`), the
model's proprioception normalised by the train split's statistics, an optional pretrained
(and frozen) encoder or a whole world model to fine-tune (``--init-from``: e.g. an
action-free run fine-tuned with actions), and validation on fixed held-out windows every
``val_every`` steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..config import from_dict, to_dict
from ..configs import ModelConfig, TrainConfig, parse_proprio
from ..errors import CheckpointError, WorldJepaError
from .loop import TrainingError, TrainingLoop
from .runfiles import check_same_data
from .validation import Validator

__all__ = ["Trainer", "TrainingError"]
logger = logging.getLogger(__name__)


def _proprio_dim(spec: str, ds: Any) -> int:
    """Values per frame of the proprio extra ``spec`` (``'state[2:4]'``) in dataset ``ds``."""
    key, sl = parse_proprio(spec)
    if key not in ds.extras:
        raise WorldJepaError(f"--proprio {spec!r}: {ds.path} has no extra {key!r} (it has {', '.join(ds.extras) or 'none'})")
    shape = ds.shapes[key]  # one frame's entry
    if len(shape) != 1:
        raise WorldJepaError(f"--proprio {spec!r}: {key!r} must hold one vector per frame, its frames are "
                             f"{shape or 'scalars'}")
    k = len(range(shape[0])[sl])
    if k < 1:
        raise WorldJepaError(f"--proprio {spec!r}: the slice selects nothing of {key!r}'s {shape[0]} values")
    return k


class Trainer(TrainingLoop):
    """One world-model training run: build (or resume) from a :class:`TrainConfig`, then :meth:`fit`."""

    kind = "world_model"
    best_metric = "val/pred_over_copy"

    def setup(self, cfg: TrainConfig) -> TrainConfig:
        from ..data.dataset import Dataset
        from ..data.windows import WindowDataset

        if not cfg.data:
            raise WorldJepaError("no dataset: pass --data FILE (made by `worldjepa collect`)")
        resume = self.resume_meta
        with Dataset(cfg.data) as ds:
            ds.check()  # checksums of every action and extra, and of the frames of a sample of episodes
            self.data_meta, self.fingerprint = ds.meta, ds.fingerprint()
            if resume is not None:
                from ..checkpoint import check_compatible

                check_compatible(resume, ds.env_id, ds.frame_size, ds.action_dim,
                                 where=f"cannot resume {self.run_dir}: the checkpoint")
                check_same_data(resume.get("dataset"), self.fingerprint, cfg.allow_data_change, self.run_dir)
            model_cfg = replace(cfg.model, frame_size=ds.frame_size, action_dim=ds.action_dim,
                                proprio_dim=_proprio_dim(cfg.model.proprio, ds) if cfg.model.proprio else 0)
        if cfg.model.encoder.module:  # an encoder from outside, named by the caller: trusted in this process
            from ..nn.external import trust_module

            trust_module(cfg.model.encoder.module)
            if resume is None:
                model_cfg = replace(model_cfg, encoder=replace(model_cfg.encoder, dim=self._outside_dim(model_cfg)))
        if cfg.predictor_only:  # the latent stays as it is: its encoder's features are computed once
            model_cfg = replace(model_cfg, freeze_encoder=True)
        self.init_encoder = self.init_weights = None
        if cfg.encoder_init and resume is None:  # a resume reloads the trained weights instead
            self.init_encoder, model_cfg = self._pretrained_encoder(cfg.encoder_init, model_cfg)
        if cfg.init_from and resume is None:
            self.init_weights, model_cfg = self._init_model(cfg.init_from, model_cfg)
        if resume is not None:
            cfg, model_cfg = self._resumed(cfg, model_cfg, resume)
        cfg = replace(cfg, model=model_cfg)
        self.model_cfg = model_cfg
        pkey = parse_proprio(model_cfg.proprio)[0] if model_cfg.proprio else None
        self.train_data = WindowDataset(cfg.data, "train", cfg.num_frames, model_cfg.frameskip,
                                        extras=(pkey,) if pkey else (), max_memory_mb=cfg.max_memory_mb,
                                        stride=cfg.window_stride)
        self.validator = Validator(cfg.data, model_cfg.frameskip, cfg.val_horizon, cfg.val_windows, cfg.seed,
                                   cfg.max_memory_mb, extra=pkey)
        return cfg

    def inputs(self, cfg: TrainConfig) -> dict[str, Any]:
        return {"--data": cfg.data, "--encoder-init": cfg.encoder_init, "--init-from": cfg.init_from}

    def _resumed(self, cfg: TrainConfig, model_cfg: ModelConfig, meta: dict[str, Any]) -> tuple[Any, Any]:
        """The flags' config with what the saved run fixes: its model, windows and length."""
        saved = from_dict(ModelConfig, meta["model"])
        if saved != model_cfg:
            logger.warning("resume: using the checkpoint's model config (the flags describe another model)")
        was = meta.get("config", meta.get("train", {}))
        # what the windows are is part of an exact resume: keep the run's, whatever the flags say
        # (a field the checkpoint lacks was at its default then: runs before --window-stride used 1)
        windows = {f: was.get(f, getattr(TrainConfig, f)) for f in ("num_frames", "batch_size", "window_stride",
                                                                    "predictor_only")}
        windows = {f: v for f, v in windows.items() if v != getattr(cfg, f)}
        if windows:
            logger.warning("resume: keeping the run's %s (the flags asked for %s)",
                           ", ".join(f"{f}={v}" for f, v in windows.items()),
                           ", ".join(f"{f}={getattr(cfg, f)}" for f in windows))
        # the run's length fixes its learning-rate schedule: an exact resume keeps it
        length = {k: was[k] for k in ("steps", "minutes") if k in was and was[k] != getattr(cfg, k)}
        if length:
            logger.warning("resume: %s ignored; the run keeps its length (%s), which fixes its learning-rate "
                           "schedule: it ends at step %d", ", ".join(f"--{k} {getattr(cfg, k)}" for k in length),
                           ", ".join(f"--{k} {v}" for k, v in length.items()), int(meta["total_steps"]))
        return replace(cfg, **windows, **length), saved

    def _pretrained_encoder(self, run: str, model_cfg: ModelConfig) -> tuple[dict[str, Tensor], ModelConfig]:
        """The encoder weights of a ``worldjepa pretrain`` run and ``model_cfg`` with that encoder's
        architecture; a clear error for another frame size."""
        from ..encoder_model import read_encoder

        weights, encoder, size = read_encoder(run)
        if size != model_cfg.frame_size:
            raise CheckpointError(f"--encoder-init {run}: its encoder reads {size}x{size} frames, "
                                  f"the dataset's are {model_cfg.frame_size}x{model_cfg.frame_size}")
        logger.info("encoder from %s: %s, channels %s, embedding %d", run, encoder.kind, encoder.channels, encoder.dim)
        return weights, replace(model_cfg, encoder=encoder)

    @staticmethod
    def _outside_dim(model_cfg: ModelConfig) -> int:
        """The size of an outside encoder's output (``--encoder-module``): one blank frame through it."""
        from ..nn import encoder_from_config

        return int(encoder_from_config(model_cfg.encoder, model_cfg.frame_size).out_dim)

    def _init_model(self, run: str, model_cfg: ModelConfig) -> tuple[dict[str, Tensor], ModelConfig]:
        """The weights of the world model of ``run`` and its model config, with this run's
        ``action_free`` and ``freeze_encoder``; a clear error for another env, frame size or
        action space."""
        from .. import checkpoint as ckpt
        from ..checkpoint import check_compatible
        from ..world_model import model_weights

        tensors, meta = ckpt.load(run)
        if meta.get("kind", "world_model") != "world_model" or "model" not in meta:
            raise CheckpointError(f"--init-from {run}: not a `worldjepa train` run (kind {meta.get('kind')!r})")
        check_compatible(meta, self.data_meta["env_id"], model_cfg.frame_size, model_cfg.action_dim,
                         where=f"--init-from {run}")
        saved = replace(from_dict(ModelConfig, meta["model"]), action_free=model_cfg.action_free,
                        freeze_encoder=model_cfg.freeze_encoder)
        if saved != model_cfg:
            logger.warning("--init-from: using %s's model config (the flags describe another model)", run)
        was = "action-free" if meta["model"].get("action_free") else "action-conditioned"
        logger.info("weights from %s (%s, step %s)%s", run, was, meta.get("step"),
                    "; actions now condition the predictor, from zero" if was == "action-free" and
                    not saved.action_free else "")
        return model_weights(tensors), saved

    def build_model(self) -> torch.nn.Module:
        from ..nn._checks import check_fits, check_trainable
        from ..world_model import build_world_model

        check_trainable(lambda: build_world_model(self.model_cfg))  # sizes checked before anything is allocated
        check_fits(4 * self.cfg.batch_size * self.cfg.num_frames * 3 * self.model_cfg.frame_size ** 2,
                   f"a batch of {self.cfg.batch_size} windows of {self.cfg.num_frames} frames")
        model = build_world_model(self.model_cfg)
        if self.init_encoder is not None:
            model.encoder.load_state_dict(self.init_encoder)
        enc = self.model_cfg.encoder
        if enc.kind == "module" and enc.weights and self.resume_meta is None:  # the user's weights, from disk
            from ..nn.external import load_encoder_weights

            load_encoder_weights(model.encoder, enc.weights)
            logger.info("encoder: %s(%s) with the weights of %s", enc.module, enc.module_kwargs, enc.weights)
        if model.proprio:  # normalise proprioception by the train split's statistics (a resume reloads them)
            model.set_proprio_stats(model.proprio_of(self.train_data.extras_arrays()))
        if self.init_weights is not None:  # the whole model, its proprioception statistics included
            weights = self.init_weights
            if self.cfg.predictor_only:  # all but the predictor, made afresh above from --seed
                weights = {k: v for k, v in weights.items() if not k.startswith("predictor.")}
            missing = model.load_state_dict(weights, strict=not self.cfg.predictor_only).missing_keys
            lost = [k for k in missing if not k.startswith("predictor.")]
            if lost:
                raise CheckpointError(f"--init-from {self.cfg.init_from}: its weights lack {lost[0]}")
            if model.action_free and not self.cfg.predictor_only:  # an action-conditioned run made action-free:
                model.zero_action_input()  # its action input goes
        if self.cfg.predictor_only:
            for name, part in model.named_children():
                part.requires_grad_(name == "predictor")
        if self.model_cfg.freeze_encoder:
            model.encoder.requires_grad_(False)
        return model

    def train_mode(self) -> None:
        super().train_mode()
        if self.cfg.predictor_only:  # the latent's BatchNorm statistics must not move either
            for name, part in self.model.named_children():
                if name != "predictor":
                    part.eval()

    def describe(self) -> dict[str, Any]:
        return {"env_id": self.data_meta["env_id"], "frame_size": self.model_cfg.frame_size,
                "action_space": self.data_meta["action_space"], "dataset": self.fingerprint,
                "model": to_dict(self.model_cfg)}

    # -------------------------------------------------------------------------- the steps
    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__(cfg)
        self._cache_features()  # after a restore: the features of the restored encoder

    def _cache_features(self) -> None:
        """A frozen encoder's outputs never change: compute them once per frame (part of the
        run's wall time, and of a --minutes budget)."""
        if not self.model_cfg.freeze_encoder:
            return
        t0 = time.perf_counter()
        self.train_data.cache_features(self._encoder_features)
        took = time.perf_counter() - t0
        self.elapsed += took
        logger.info("frozen encoder: features of the %d train frames windows hold computed once (%.0f s)",
                    len(self.train_data.window_rows), took)

    def _encoder_features(self, frames: np.ndarray) -> np.ndarray:
        """Encoder outputs ``(N, E)`` of uint8 frames ``(N, H, W, 3)`` (no gradient)."""
        from ..nn import frames_to_float

        with torch.no_grad():
            return self.model.encoder(frames_to_float(frames, self.device)).cpu().numpy()

    def batch_loss(self) -> dict[str, Tensor]:
        batch = self.train_data.gather(self.shard(self.train_data.draw(self.cfg.batch_size * self.world, self.rng)))
        p = self.model.proprio_of(batch)
        inputs = {"features": torch.as_tensor(batch["features"], device=self.device)} if "features" in batch \
            else {"frames": torch.as_tensor(batch["frames"], device=self.device)}
        return self.net(torch.as_tensor(batch["actions"]), proprio=None if p is None else torch.as_tensor(p), **inputs)

    def periodic(self, last: bool) -> dict[str, float]:
        return self.validate() if self.step % self.cfg.val_every == 0 or last else {}

    def budget_reserve(self) -> float:
        return 0.5 / self.cfg.val_every  # validation's share of the time

    def validate(self) -> dict[str, float]:
        """Validation metrics (every rank computes them, rank 0 logs them)."""
        self.last_val = self.validator(self.model)
        return self.last_val
