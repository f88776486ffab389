"""The one training loop: ``train`` (world models) and ``pretrain`` (LeJEPA encoders) subclass it.

A run directory holds ``model.safetensors`` (weights, for inference), ``last.safetensors``
(weights + optimiser + every RNG + step, for resume), ``config.json`` (the checkpoint's
metadata, readable), with ``--keep K`` the last K saves' weights in ``checkpoints/`` and the
best validated ones in ``best.safetensors``, and ``metrics.jsonl`` (one JSON object per line: ``step``, ``time`` in
seconds, metrics namespaced ``train/…``, ``val/…``, ``probe/…``). The loop owns what every
run needs, once:

* the run directory: a new run refuses a folder that holds one, ``--resume`` continues it;
* the budget: ``steps``, or ``--minutes`` (:mod:`worldjepa.training.budget`);
* the learning rate: linear warm-up, then cosine decay (:func:`worldjepa.utils.warmup_cosine`);
* AdamW with weight decay on weight matrices only (biases, norm layers and other 1-D
  parameters are not decayed);
* the guard: a NaN/Inf loss or gradient stops the run naming the step, the last good
  checkpoint left intact;
* exact resume: weights, optimiser, the numpy sampler, torch's RNG (and CUDA's) per rank, the
  step, the elapsed time and the task's own state, so a resumed run's losses equal an
  uninterrupted run's;
* the device (``auto``: CUDA when torch sees one) and the precision (``bf16``: the forward
  pass under torch's bfloat16 autocast; weights and optimiser stay float32);
* ``torchrun``: W processes with ``--batch-size B`` train exactly as one process with ``W * B``
  (:mod:`worldjepa.training.distributed`): every rank draws the same global batch and keeps
  its share (:meth:`shard`), BatchNorm and SIGReg statistics span all ranks, DDP averages the
  gradients, rank 0 writes.

A subclass says what is trained: :meth:`setup` (data, and the saved run's options on resume),
:meth:`build_model`, :meth:`batch_loss` (one batch's loss terms), and optionally
:meth:`after_update`, :meth:`periodic` (validation, probe reports), :meth:`describe`
(checkpoint metadata) and :meth:`task_state` / :meth:`load_task_state` (extra state to resume).
"""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .. import checkpoint as ckpt
from ..errors import CheckpointError, WorldJepaError
from ..locks import WriterLock
from ..paths import check_run_folder
from ..signals import Interrupted, StopSignals
from ..utils import autocast, pick_device
from .budget import MinutesBudget
from .resume import RunCheckpoints
from .runfiles import append_metrics

logger = logging.getLogger(__name__)


class TrainingError(WorldJepaError):
    """Training cannot go on (e.g. a NaN/Inf loss); the message names the step."""


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups of the trainable parameters: weight decay on matrices and kernels (``dim >= 2``),
    none on biases, norm layers' scales and other vectors."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


class TrainingLoop(RunCheckpoints):
    """One run of a training loop from a config with the loop's common fields (``out``, ``steps``,
    ``minutes``, ``resume``, ``seed``, ``device``, ``precision``, ``threads``, ``lr``, ``weight_decay``,
    ``min_lr_ratio``, ``grad_clip``, ``log_every``, ``save_every``, ``progress``, ``tensorboard``)."""

    kind = "model"  # the checkpoint's kind
    progress_name = "train"  # what the progress bar and lines are called

    def __init__(self, cfg: Any) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = pick_device(cfg.device, int(os.environ.get("LOCAL_RANK", "0")))
        if cfg.threads > 0:
            torch.set_num_threads(cfg.threads)
        self._owns_group = self.world > 1 and not torch.distributed.is_initialized()
        if self._owns_group:
            torch.distributed.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        if cfg.tensorboard:  # before anything is written
            from ..monitor import require_tensorboard

            require_tensorboard()
        self.run_dir = Path(cfg.out)
        last = self.run_dir / ckpt.RESUME_FILE
        if cfg.resume and not last.is_file():
            raise CheckpointError(f"--resume: {last} does not exist (nothing to resume)")
        self.lock: WriterLock | None = None
        try:
            if self.is_main:  # locked (another writer at work is named first) and checked before any work
                lock = WriterLock(self.run_dir, f"run folder {self.run_dir}", folder=True)
                if self.run_dir.is_dir() and not self.run_dir.is_symlink():
                    self.lock = lock.acquire()
                check_run_folder(self.run_dir, cfg.resume, {} if cfg.resume else self.inputs(cfg))
                self.lock = self.lock or lock.acquire()
            self._init(cfg)
        except BaseException:
            self.release()
            raise

    def _init(self, cfg: Any) -> None:
        self.resume_meta = ckpt.read_meta(self.run_dir / ckpt.RESUME_FILE) if cfg.resume else None
        self.cfg = self.setup(cfg)
        torch.manual_seed(self.cfg.seed)
        self.model = self.build_model().to(self.device)
        self.net: torch.nn.Module = self.model
        if self.world > 1:
            from .distributed import sync_batchnorm

            self.model = sync_batchnorm(self.model, self.device)  # statistics over every rank's batch
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.opt = torch.optim.AdamW(param_groups(self.model, self.cfg.weight_decay), lr=self.cfg.lr)
        # the same generator on every rank: each draws the global batch and keeps its shard
        self.rng = np.random.default_rng([self.cfg.seed, 0])
        self.step, self.total, self.elapsed = 0, self.cfg.steps, 0.0
        self.budget = MinutesBudget(self.cfg.minutes, self.cfg.steps, self.budget_reserve(), self.world)
        self.saved_step: int | None = None
        self.last_val: dict[str, float] = {}
        self.losses: dict[int, float] = {}  # step -> loss of the steps run in this process
        self.tb: Any = None
        if self.resume_meta is not None:
            self._restore()

    def release(self) -> None:
        """Let another process write the run folder (after :meth:`fit`, or a failed start)."""
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    # ----------------------------------------------------------------- what a subclass says
    def setup(self, cfg: Any) -> Any:
        """Load the data; on resume (``self.resume_meta``) adopt what the saved run fixes. Returns the config."""
        return cfg

    def inputs(self, cfg: Any) -> dict[str, Any]:
        """The files a new run reads (flag -> path): the run folder must not hold them."""
        return {"--data": cfg.data}

    def build_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def batch_loss(self) -> dict[str, Tensor]:
        """The loss terms of one freshly sampled batch (``"loss"`` + named terms), through ``self.net``."""
        raise NotImplementedError

    def after_update(self) -> None:
        """After each optimiser step (e.g. an online probe's own update)."""

    def periodic(self, last: bool) -> dict[str, float]:
        """Metrics due at this step (validation, probe reports), ``last`` at the run's last step."""
        return {}

    def describe(self) -> dict[str, Any]:
        """What the checkpoint metadata says of the model and its data."""
        return {}

    def task_state(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """Extra tensors and JSON state a resume needs (beyond weights, optimiser and RNGs)."""
        return {}, {}

    def load_task_state(self, tensors: dict[str, Tensor], info: dict[str, Any]) -> None:
        pass

    def budget_reserve(self) -> float:
        """Fraction of a step's time to keep free per step in a --minutes budget (e.g. validation)."""
        return 0.0

    def shard(self, values: Any, axis: int = 0) -> Any:
        """This rank's share of random values drawn for the global batch (``world`` times the
        per-process batch along ``axis``) with ``self.rng``, identically on every rank."""
        from .distributed import shard

        return shard(values, axis)

    # ------------------------------------------------------------------------ checkpoints
    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -------------------------------------------------------------------------- the loop
    def lr_at(self, step: int) -> float:
        """Learning rate of step ``step`` (0-based) of this run."""
        from ..utils import warmup_cosine

        return warmup_cosine(step, self.total, self.cfg.lr, self.warmup_steps(), self.cfg.min_lr_ratio)

    def warmup_steps(self) -> int:
        return int(self.cfg.warmup_steps)

    def train_mode(self) -> None:
        """Put the model in training mode before each step (a subclass may keep frozen parts in eval mode)."""
        self.model.train()

    def train_step(self) -> dict[str, float]:
        """One optimiser step on a freshly sampled batch; raises TrainingError on NaN/Inf."""
        from ..losses import SIGRegError

        self.train_mode()
        lr = self.lr_at(self.step)
        for group in self.opt.param_groups:
            group["lr"] = lr
        try:
            with autocast(self.device, self.cfg.precision):  # the forward only: backward follows its dtypes
                terms = self.batch_loss()
        except SIGRegError as e:
            raise self._nan_error(f"{e}") from None
        vals = self._global_mean({k: v.detach() for k, v in terms.items()})
        loss = vals["loss"]
        if not math.isfinite(loss):
            detail = ", ".join(f"{k} {v}" for k, v in vals.items() if k != "loss")
            raise self._nan_error(f"loss is {loss} ({detail})")
        self.opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        clip = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        gnorm = float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        if not math.isfinite(gnorm):
            raise self._nan_error(f"gradient norm is {gnorm}")
        self.opt.step()
        self.after_update()
        self.step += 1
        self.losses[self.step] = loss
        return {**{f"train/{k}": v for k, v in vals.items()}, "train/lr": lr, "train/grad_norm": gnorm}

    def _global_mean(self, terms: dict[str, Tensor]) -> dict[str, float]:
        """The loss terms of the global batch: each rank's terms are means over its share (or, as
        SIGReg's, already global), so their mean over ranks is the one-process value; every rank
        then sees the same numbers (and stops together on a NaN)."""
        if self.world == 1:
            return {k: float(v) for k, v in terms.items()}
        flat = torch.stack([v.float().reshape(()) for v in terms.values()])  # (n_terms,)
        torch.distributed.all_reduce(flat)
        return {k: float(v) / self.world for k, v in zip(terms, flat.tolist())}

    def _nan_error(self, what: str) -> TrainingError:
        kept = (f"the last good checkpoint {self.run_dir / ckpt.RESUME_FILE} (step {self.saved_step}) is intact"
                if self.saved_step is not None else "no checkpoint had been written yet")
        return TrainingError(f"non-finite values at step {self.step + 1}: {what}; training stopped and "
                             f"saved nothing; {kept}. Lower --lr or check the data.")

    def log(self, row: dict[str, float]) -> None:
        """Append one line to ``metrics.jsonl`` (and TensorBoard when it is on)."""
        if not self.is_main or not row:
            return
        kept = f"the checkpoint of step {self.saved_step} is intact" if self.saved_step is not None else \
            "no checkpoint had been written yet"
        append_metrics(self.run_dir / "metrics.jsonl", {"step": self.step, "time": round(self.elapsed, 3), **row}, kept)
        if self.tb is not None:
            for k, v in row.items():
                self.tb.add_scalar(k, v, self.step)

    def _open_tensorboard(self) -> None:
        if self.cfg.tensorboard:  # opt-in: metrics.jsonl always has everything
            from ..monitor import tensorboard_writer

            self.tb = tensorboard_writer(self.run_dir / "tb")

    def fit(self, stop_at: int | None = None) -> dict[str, Any]:
        """Train to the step budget (or to ``stop_at``, leaving the run resumable); returns a summary.

        Writes checkpoints every ``save_every`` steps and at the end. SIGINT, SIGTERM or SIGHUP
        finishes the current step, saves it and raises :class:`~worldjepa.signals.Interrupted`
        (exit 128 + signal); a resume from there equals the uninterrupted run.
        """
        from ..progress import Progress

        if self.is_main:
            self._open_tensorboard()
        bar = Progress(self.total, self.progress_name, "step", initial=self.step,
                       enabled=self.cfg.progress and self.is_main)
        t0 = time.perf_counter() - self.elapsed
        self.budget.start(self.step, self.elapsed)
        metrics: dict[str, float] = {}
        try:
            with StopSignals() as stop:
                while self.step < self.total and (stop_at is None or self.step < stop_at):
                    metrics = self.train_step()
                    self.elapsed = time.perf_counter() - t0
                    total = self.budget.update(self.step, self.elapsed, self.total)
                    if total is not None:
                        self.total = total
                        bar.set_total(total)
                    last = self.step == self.total or self.step == stop_at
                    row = {**metrics, "train/steps_per_s": self.step / max(self.elapsed, 1e-9)} \
                        if self.step % self.cfg.log_every == 0 or last else {}
                    self.log({**row, **self.periodic(self.step == self.total)})
                    if self.step % self.cfg.save_every == 0 or self.step == self.total:
                        self.save()
                    ratio = self.last_val.get("val/pred_over_copy")  # none before the first validation
                    bar.update(1, loss=f"{metrics['train/loss']:.4f}", **({} if ratio is None else {"val": f"{ratio:.3f}"}))
                    signum = self._stop_signal(stop)
                    if signum:  # the step is complete: save it and stop (an exact resume continues here)
                        if self.saved_step != self.step:
                            self.save()
                        logger.warning("stopped at step %d: saved %s", self.step, self.run_dir / ckpt.RESUME_FILE)
                        raise Interrupted(signum, f"step {self.step} saved in {self.run_dir / ckpt.RESUME_FILE}; "
                                                  "continue with --resume")
            if self.saved_step != self.step:
                self.save()
        except KeyboardInterrupt as e:
            if not getattr(e, "saved", ""):  # a second signal (or one without handlers) mid-step: nothing saved
                kept = f"the last checkpoint (step {self.saved_step}) is intact" if self.saved_step is not None \
                    else "nothing had been saved yet"
                raise Interrupted(getattr(e, "signum", 2), f"stopped at once, inside step {self.step + 1}; {kept}") from None
            raise
        finally:
            bar.close()
            if self.tb is not None:
                self.tb.close()
            self.release()
        return {"step": self.step, "total_steps": self.total, "minutes": self.elapsed / 60, **metrics, **self.last_val}

    def _stop_signal(self, stop: StopSignals) -> int:
        """The stop signal received by any rank (all ranks stop after the same step), or 0."""
        if self.world == 1:
            return stop.requested
        flag = torch.tensor([stop.requested], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return int(flag)

    def close(self) -> None:
        """Tear down the process group this loop started (torchrun), all ranks together."""
        self.release()
        if self._owns_group:
            from .distributed import close_process_group

            close_process_group()
            self._owns_group = False
