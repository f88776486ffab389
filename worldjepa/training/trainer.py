"""The training loop: windows -> world-model loss -> AdamW, with validation, guards and exact resume.

A run directory holds ``model.safetensors`` (weights, for inference), ``last.safetensors``
(weights + optimiser + RNG states + step, for resume), ``config.json`` and
``metrics.jsonl`` (one JSON object per line, metric names namespaced ``train/…``,
``val/…``). Resuming restores every source of randomness (window sampler, torch RNG,
SIGReg's step counter) and the optimiser, so the resumed run's losses equal the
uninterrupted run's. Under ``torchrun`` (``WORLD_SIZE > 1``) each rank samples its own
windows (seed + rank), gradients are averaged by DDP and only rank 0 writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..config import to_dict
from ..errors import CheckpointError, WorldJepaError
from . import checkpoint as ckpt
from .config import TrainConfig
from .validation import Validator

logger = logging.getLogger(__name__)
CALIBRATION_STEPS = 20  # with --minutes, the step count is fixed after timing this many steps


class TrainingError(WorldJepaError):
    """Training cannot go on (e.g. a NaN/Inf loss); the message names the step."""


def dataset_fingerprint(path: str | Path, ds: Any) -> dict[str, Any]:
    """Path, episodes, frames and a SHA-256 of the episode table, all actions and up to 64
    evenly spaced frames: changes whenever the data a model saw changes, in about a second."""
    f = ds.f
    h = hashlib.sha256()
    for name in ("episodes/start", "episodes/length", "episodes/seed", "actions"):
        h.update(np.ascontiguousarray(f[name][:]).tobytes())
    for i in np.linspace(0, ds.num_frames - 1, min(64, ds.num_frames)).astype(int):
        h.update(np.ascontiguousarray(f["frames"][int(i)]).tobytes())
    return {"path": str(Path(path).resolve()), "episodes": ds.num_episodes, "frames": ds.num_frames,
            "sha256": h.hexdigest()[:16]}


def lr_at(step: int, total: int, cfg: TrainConfig) -> float:
    """Learning rate of step ``step`` (0-based): linear warm-up, then cosine to ``min_lr_ratio * lr``."""
    from ..utils import warmup_cosine

    return warmup_cosine(step, total, cfg.lr, cfg.warmup_steps, cfg.min_lr_ratio)


def _device(name: str, local_rank: int) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise WorldJepaError("--device cuda, but torch sees no CUDA device")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _proprio_dim(spec: str, ds: Any) -> int:
    """Values per frame of the proprio extra ``spec`` (``'state[2:4]'``) in dataset ``ds``."""
    from ..world_model import parse_proprio

    key, sl = parse_proprio(spec)
    if key not in ds.extras:
        raise WorldJepaError(f"--proprio {spec!r}: {ds.path} has no extra {key!r} (it has {', '.join(ds.extras) or 'none'})")
    shape = ds.f["extras"][key].shape  # (N, ...) over all frames
    if len(shape) != 2:
        raise WorldJepaError(f"--proprio {spec!r}: {key!r} must hold one vector per frame, its frames are "
                             f"{shape[1:] or 'scalars'}")
    n = int(shape[1])
    k = len(range(n)[sl])
    if k < 1:
        raise WorldJepaError(f"--proprio {spec!r}: the slice selects nothing of {key!r}'s {n} values")
    return k


def _pretrained_encoder(run: str, model_cfg: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """The encoder weights of a ``worldjepa pretrain`` run and ``model_cfg`` with that encoder's
    architecture; a clear error for another kind of checkpoint or another frame size."""
    tensors, meta = ckpt.load(run)
    if meta.get("kind") != "lejepa":
        raise CheckpointError(f"--encoder-init {run}: not a `worldjepa pretrain` run (its kind is "
                              f"{meta.get('kind')!r}); pass the directory `worldjepa pretrain --out` wrote")
    arch = meta["model"]
    if int(arch["size"]) != model_cfg.frame_size:
        raise CheckpointError(f"--encoder-init {run}: its encoder reads {arch['size']}x{arch['size']} frames, "
                              f"the dataset's are {model_cfg.frame_size}x{model_cfg.frame_size}")
    prefix = "model/encoder."
    weights = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    patch = int(weights["patch_embed.weight"].shape[-1]) if arch["encoder"] == "vit_tiny" else model_cfg.patch
    model_cfg = replace(model_cfg, encoder=arch["encoder"], encoder_dim=int(arch["embed_dim"]),
                        channels=tuple(arch["channels"]), patch=patch, keypoints=int(arch.get("keypoints", 0)))
    logger.info("encoder from %s: %s, channels %s, embedding %d", run, arch["encoder"], arch["channels"],
                arch["embed_dim"])
    return weights, model_cfg


class Trainer:
    """One training run: build (or resume) from a :class:`TrainConfig`, then :meth:`fit`."""

    def __init__(self, cfg: TrainConfig) -> None:
        from ..data.dataset import Dataset
        from ..data.windows import WindowDataset
        from ..world_model import build_world_model, parse_proprio

        if not cfg.data:
            raise WorldJepaError("no dataset: pass --data FILE (made by `worldjepa collect`)")
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = _device(cfg.device, local_rank)
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self._owns_group = self.world > 1 and not torch.distributed.is_initialized()
        if self._owns_group:
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        self.run_dir = Path(cfg.out)
        resume_meta = self._check_run_dir(cfg)
        with Dataset(cfg.data) as ds:
            self.data_meta = ds.meta
            fingerprint = dataset_fingerprint(cfg.data, ds)
            if resume_meta is not None:
                ckpt.check_compatible(resume_meta, ds.env_id, ds.frame_size, ds.action_dim,
                                      where=f"cannot resume {self.run_dir}: the checkpoint")
            model_cfg = replace(cfg.model, frame_size=ds.frame_size, action_dim=ds.action_dim,
                                proprio_dim=_proprio_dim(cfg.model.proprio, ds) if cfg.model.proprio else 0)
        init_encoder = None
        if cfg.encoder_init and resume_meta is None:  # a resume reloads the trained weights instead
            init_encoder, model_cfg = _pretrained_encoder(cfg.encoder_init, model_cfg)
        if resume_meta is not None:
            from ..config import from_dict
            from ..world_model import ModelConfig

            saved = from_dict(ModelConfig, resume_meta["model"])
            if saved != model_cfg:
                logger.warning("resume: using the checkpoint's model config (the flags describe another model)")
            model_cfg = saved
            # what the windows are is part of an exact resume: keep the run's, whatever the flags say
            # (a field the checkpoint lacks was at its default then: runs before --window-stride used 1)
            was = resume_meta.get("train", {})
            changed = {f: was.get(f, getattr(TrainConfig, f)) for f in ("num_frames", "batch_size", "window_stride")}
            changed = {f: v for f, v in changed.items() if v != getattr(cfg, f)}
            if changed:
                logger.warning("resume: keeping the run's %s (the flags asked for %s)",
                               ", ".join(f"{f}={v}" for f, v in changed.items()),
                               ", ".join(f"{f}={getattr(cfg, f)}" for f in changed))
                cfg = replace(cfg, **changed)
        self.cfg = replace(cfg, model=model_cfg)
        self.model_cfg = model_cfg
        k = model_cfg.frameskip
        pkey = parse_proprio(model_cfg.proprio)[0] if model_cfg.proprio else None
        self.train_data = WindowDataset(cfg.data, "train", cfg.num_frames, k, extras=(pkey,) if pkey else (),
                                        max_memory_mb=cfg.max_memory_mb, stride=cfg.window_stride)
        self.validator = Validator(cfg.data, k, cfg.val_horizon, cfg.val_windows, cfg.seed, cfg.max_memory_mb,
                                   extra=pkey)
        torch.manual_seed(cfg.seed)
        self.model = build_world_model(model_cfg).to(self.device)
        if init_encoder is not None:
            self.model.encoder.load_state_dict(init_encoder)
        if model_cfg.freeze_encoder:
            self.model.encoder.requires_grad_(False)
        if pkey:  # normalise proprioception by the train split's statistics (a resume reloads them)
            self.model.set_proprio_stats(self.model.proprio_of(self.train_data.extras_arrays()))
        self.net: torch.nn.Module = self.model
        if self.world > 1:
            if self.device.type == "cuda":
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.rng = np.random.default_rng([cfg.seed, self.rank])
        self.step, self.total, self.calibrated, self.elapsed = 0, cfg.steps, cfg.minutes <= 0, 0.0
        self.saved_step: int | None = None
        self.last_val: dict[str, float] = {}
        self.losses: dict[int, float] = {}  # step -> loss of the steps run in this process
        self.meta = {
            "format": "worldjepa-checkpoint", "kind": "world_model", "env_id": self.data_meta["env_id"],
            "frame_size": model_cfg.frame_size, "action_space": self.data_meta["action_space"],
            "dataset": fingerprint, "model": to_dict(model_cfg), "train": to_dict(self.cfg),
            "library_version": __version__,
        }
        self.tb = None
        if self.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume_meta is not None:
            self._restore()
        if model_cfg.freeze_encoder:  # its outputs never change: compute them once per frame (after a restore)
            t0 = time.perf_counter()
            self.train_data.cache_features(self._encoder_features)
            took = time.perf_counter() - t0
            self.elapsed += took  # part of the training's wall time (and of a --minutes budget)
            logger.info("frozen encoder: features of the %d train frames windows hold computed once (%.0f s)",
                        len(self.train_data.window_rows), took)

    # ------------------------------------------------------------------ run directory
    def _encoder_features(self, frames: np.ndarray) -> np.ndarray:
        """Encoder outputs ``(N, E)`` of uint8 frames ``(N, H, W, 3)`` (no gradient)."""
        from ..world_model import frames_to_float

        with torch.no_grad():
            return self.model.encoder(frames_to_float(frames, self.device)).cpu().numpy()

    def _check_run_dir(self, cfg: TrainConfig) -> dict[str, Any] | None:
        last = self.run_dir / ckpt.RESUME_FILE
        if cfg.resume:
            if not last.is_file():
                raise CheckpointError(f"--resume: {last} does not exist (nothing to resume)")
            return ckpt.read_meta(last)
        if last.is_file():
            raise WorldJepaError(f"{self.run_dir} already holds a run; pass --resume to continue it "
                                 "or choose another --out")
        return None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ------------------------------------------------------------------ checkpoints
    def _meta(self) -> dict[str, Any]:
        return {**self.meta, "step": self.step, "total_steps": self.total, "val": self.last_val}

    def save(self) -> None:
        """Write ``model.safetensors``, ``last.safetensors`` and ``config.json``. Every rank
        must call it (each rank's RNG states are gathered); only rank 0 writes."""
        mine = {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state().tolist(),
                "cuda": torch.cuda.get_rng_state(self.device).tolist() if self.device.type == "cuda" else None}
        states = [mine]
        if self.world > 1:
            states = [None] * self.world
            torch.distributed.all_gather_object(states, mine)
        self.saved_step = self.step
        if not self.is_main:
            return
        weights = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        opt_tensors, opt_info = ckpt.flatten_optimizer(self.opt.state_dict())
        rng = {}
        for r, st in enumerate(states):  # one entry per rank
            rng[f"rng/torch/{r}"] = torch.tensor(st["torch"], dtype=torch.uint8)
            if st["cuda"] is not None:
                rng[f"rng/cuda/{r}"] = torch.tensor(st["cuda"], dtype=torch.uint8)
        resume = {"optimizer": opt_info, "numpy_rng": [st["numpy"] for st in states], "elapsed": self.elapsed,
                  "calibrated": self.calibrated, "world_size": self.world}
        ckpt.save(self.run_dir / ckpt.RESUME_FILE, {**weights, **opt_tensors, **rng},
                  {**self._meta(), "resume": resume})
        ckpt.save(self.run_dir / ckpt.MODEL_FILE, weights, self._meta())
        (self.run_dir / "config.json").write_text(json.dumps(self._meta(), indent=2) + "\n")

    def _restore(self) -> None:
        tensors, meta = ckpt.load(self.run_dir / ckpt.RESUME_FILE)
        weights = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
        self.model.load_state_dict(weights)
        r = meta["resume"]
        self.opt.load_state_dict(ckpt.unflatten_optimizer(tensors, r["optimizer"]))
        if r.get("world_size", 1) != self.world:
            raise CheckpointError(f"cannot resume {self.run_dir} exactly: it was trained by {r.get('world_size', 1)} "
                                  f"process(es), this launch has {self.world}")
        self.rng.bit_generator.state = r["numpy_rng"][self.rank]
        torch.set_rng_state(tensors[f"rng/torch/{self.rank}"])
        if f"rng/cuda/{self.rank}" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors[f"rng/cuda/{self.rank}"], self.device)
        self.step, self.total, self.elapsed = int(meta["step"]), int(meta["total_steps"]), float(r["elapsed"])
        was = meta.get("train", {})
        asked = {k: getattr(self.cfg, k) for k in ("steps", "minutes") if k in was and was[k] != getattr(self.cfg, k)}
        if asked:  # an exact resume keeps the run's length: its learning-rate schedule depends on it
            logger.warning("resume: %s ignored; the run keeps its length (%s), which fixes its learning-rate "
                           "schedule: it ends at step %d", ", ".join(f"--{k} {v}" for k, v in asked.items()),
                           ", ".join(f"--{k} {was[k]}" for k in asked), self.total)
            self.cfg = replace(self.cfg, **{k: was[k] for k in asked})
            self.meta["train"] = to_dict(self.cfg)
        self.calibrated, self.last_val, self.saved_step = bool(r["calibrated"]), meta.get("val", {}), self.step
        path = self.run_dir / "metrics.jsonl"
        if path.is_file() and self.is_main:  # drop lines logged after the checkpoint
            keep = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln).get("step", 0) <= self.step]
            path.write_text("".join(ln + "\n" for ln in keep))
        logger.info("resumed %s at step %d of %d", self.run_dir, self.step, self.total)

    # ------------------------------------------------------------------ logging
    def log(self, metrics: dict[str, float]) -> None:
        if not self.is_main:
            return
        row = {"step": self.step, "time": round(self.elapsed, 3), **metrics}
        with open(self.run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(k, v, self.step)

    def _open_tensorboard(self) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # optional: metrics.jsonl always has everything
            return
        self.tb = SummaryWriter(str(self.run_dir / "tb"))

    # ------------------------------------------------------------------ the loop
    def train_step(self) -> dict[str, float]:
        """One optimiser step on a freshly sampled batch; raises TrainingError on NaN/Inf."""
        from ..losses import SIGRegError

        self.model.train()
        batch = self.train_data.sample(self.cfg.batch_size, self.rng)
        lr = lr_at(self.step, self.total, self.cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        try:
            out = self.net(batch)
        except SIGRegError as e:
            raise self._nan_error(f"{e}") from None
        vals = {k: float(v.detach()) for k, v in out.items()}
        loss = vals["loss"]
        if not math.isfinite(loss):
            raise self._nan_error(f"loss is {loss} (pred {vals['pred']}, reg {vals['reg']})")
        self.opt.zero_grad(set_to_none=True)
        out["loss"].backward()
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        gnorm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        if not math.isfinite(gnorm):
            raise self._nan_error(f"gradient norm is {gnorm}")
        self.opt.step()
        self.step += 1
        self.losses[self.step] = loss
        return {**{f"train/{k}": v for k, v in vals.items()}, "train/lr": lr, "train/grad_norm": gnorm}

    def _nan_error(self, what: str) -> TrainingError:
        kept = (f"the last good checkpoint {self.run_dir / ckpt.RESUME_FILE} (step {self.saved_step}) is intact"
                if self.saved_step is not None else "no checkpoint had been written yet")
        return TrainingError(f"non-finite values at step {self.step + 1}: {what}; training stopped and "
                             f"saved nothing; {kept}. Lower --lr or check the data.")

    def _calibrate(self) -> None:
        """Fix the step count that fits the --minutes budget from the mean speed so far (on a
        shared CPU the speed swings 10x within minutes; the mean is the steadier guess);
        the same on every rank."""
        per_step = (self.elapsed - self._calib_mark[1]) / max(1, self.step - self._calib_mark[0])
        total = self.step + int((self.cfg.minutes * 60 - self.elapsed) / per_step)
        total = int(total / (1 + 0.5 / self.cfg.val_every))  # leave room for validation
        t = torch.tensor([max(self.step + 1, min(self.cfg.steps, total))])
        if self.world > 1:
            torch.distributed.broadcast(t, 0)
        self.total, self.calibrated = int(t), True
        logger.debug("train: %.2f s/step -> %d steps fit in %.1f minutes", per_step, self.total, self.cfg.minutes)

    def _maybe_calibrate(self) -> bool:
        """With --minutes: calibrate after the first steps, then re-estimate every
        ``CALIBRATION_STEPS`` steps in the first 60% of the budget; past 110% of it, stop."""
        if self.cfg.minutes <= 0:
            return False
        if self.elapsed > 66 * self.cfg.minutes and self.total > self.step:
            logger.warning("train: over the --minutes budget; stopping at step %d", self.step)
            self.total = self.step
            return True
        due = self.step % CALIBRATION_STEPS == 0 and (not self.calibrated or self.elapsed < 36 * self.cfg.minutes)
        if due:
            self._calibrate()
        return due

    def fit(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train to the step budget (or ``stop_at``, to simulate an interruption); returns a summary.

        Writes checkpoints every ``save_every`` steps and at the end; Ctrl-C saves and stops.
        """
        from tqdm import tqdm

        if self.is_main:
            self._open_tensorboard()
        bar = tqdm(total=self.total, initial=self.step, desc="train", unit="step",
                   disable=not (self.cfg.progress and self.is_main), dynamic_ncols=True)
        t0 = time.perf_counter() - self.elapsed
        self._calib_mark = (self.step, self.elapsed)
        try:
            while self.step < self.total and (stop_at is None or self.step < stop_at):
                metrics = self.train_step()
                self.elapsed = time.perf_counter() - t0
                if self._maybe_calibrate():
                    bar.total = self.total
                if self.step % self.cfg.log_every == 0:
                    self.log({**metrics, "train/steps_per_s": self.step / max(self.elapsed, 1e-9)})
                if self.step % self.cfg.val_every == 0 or self.step == self.total:
                    self.validate()
                if self.step % self.cfg.save_every == 0 or self.step == self.total:
                    self.save()
                ratio = self.last_val.get("val/pred_over_copy")  # none before the first validation
                bar.set_postfix(loss=f"{metrics['train/loss']:.4f}", val="-" if ratio is None else f"{ratio:.3f}")
                bar.update(1)
        except KeyboardInterrupt:
            logger.warning("interrupted at step %d: saving %s", self.step, self.run_dir / ckpt.RESUME_FILE)
            self.save()
            raise
        finally:
            bar.close()
            if self.tb is not None:
                self.tb.close()
        if self.saved_step != self.step:
            self.save()
        return {"step": self.step, "total_steps": self.total, "minutes": self.elapsed / 60, **self.last_val}

    def close(self) -> None:
        """Tear down the process group this trainer started (torchrun), all ranks together: a
        rank that tears down or exits while gloo's threads still talk to another aborts
        (SIGABRT). So: a barrier; then, through the launcher's key-value store (not gloo's
        sockets), every rank waits until all have left it before destroying the group, and until
        all have destroyed it before going on to exit."""
        if not (self._owns_group and torch.distributed.is_initialized()):
            return
        dist = torch.distributed
        store = getattr(dist.distributed_c10d, "_get_default_store", lambda: None)()
        world = dist.get_world_size()
        dist.barrier()

        def all_reach(key: str) -> None:
            if store is None:
                return
            try:
                store.add(key, 1)
                deadline = time.monotonic() + 60
                while store.add(key, 0) < world and time.monotonic() < deadline:
                    time.sleep(0.01)
            except RuntimeError:  # the store's host (rank 0 without torchrun) has gone: all are done
                pass

        all_reach("worldjepa/close/left_barrier")
        dist.destroy_process_group()
        all_reach("worldjepa/close/destroyed")
        self._owns_group = False

    def validate(self) -> dict[str, float]:
        """Validation metrics (every rank computes them, rank 0 logs them)."""
        self.last_val = self.validator(self.model)
        self.log(self.last_val)
        return self.last_val
