"""What a training run saves and reads back: ``model.safetensors``, ``last.safetensors`` (with
the optimiser, every rank's RNGs and the task's state, for an exact resume), ``config.json``,
the ``--keep K`` history and ``best.safetensors``; a mixin of :class:`~worldjepa.training.loop.TrainingLoop`."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import torch
from torch import Tensor

from .. import checkpoint as ckpt
from .._version import __version__
from ..config import to_dict
from ..errors import CheckpointError
from .runfiles import read_metrics

logger = logging.getLogger("worldjepa.training.loop")


class RunCheckpoints:
    """Saving and restoring a :class:`~worldjepa.training.loop.TrainingLoop`'s run (its attributes:
    ``run_dir``, ``model``, ``opt``, ``rng``, ``rank``, ``world``, ``step``, ``total``, ...)."""

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"format": "worldjepa-checkpoint", "kind": self.kind, **self.describe(), "config": to_dict(self.cfg),
                "library_version": __version__, "step": self.step, "total_steps": self.total,
                "finished": self.step >= self.total, "val": self.last_val}

    def save(self) -> None:
        """Write ``model.safetensors``, ``last.safetensors`` and ``config.json``. Every rank must
        call it (each rank's RNG states are gathered); only rank 0 writes."""
        mine = {"numpy": self.rng.bit_generator.state, "torch": torch.get_rng_state().tolist(),
                "cuda": torch.cuda.get_rng_state(self.device).tolist() if self.device.type == "cuda" else None}
        states = [mine]
        if self.world > 1:
            states = [None] * self.world
            torch.distributed.all_gather_object(states, mine)
        task_tensors, task_info = self.task_state()
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
                  "calibrated": self.budget.calibrated, "world_size": self.world, "task": task_info}
        meta = self.checkpoint_meta()
        ckpt.save(self.run_dir / ckpt.RESUME_FILE, {**weights, **opt_tensors, **rng, **task_tensors},
                  {**meta, "resume": resume})
        ckpt.save(self.run_dir / ckpt.MODEL_FILE, weights, meta)
        if self.cfg.keep > 1:
            self._keep(weights, meta)
        from ..atomic import atomic_write_text

        atomic_write_text(self.run_dir / "config.json", json.dumps(meta, indent=2) + "\n")

    best_metric: str | None = None  # the validation metric best.safetensors minimises (None: no best kept)

    def _keep(self, weights: dict[str, Tensor], meta: dict[str, Any]) -> None:
        """``--keep K``: this save's weights as ``checkpoints/step_N.safetensors``, only the last K
        kept; and ``best.safetensors`` when the validation metric is the lowest so far."""
        folder = self.run_dir / ckpt.KEPT_DIR
        ckpt.save(folder / f"step_{self.step:07d}.safetensors", weights, meta)
        for old in sorted(folder.glob("step_*.safetensors"))[:-self.cfg.keep]:
            old.unlink()
        score = self.last_val.get(self.best_metric) if self.best_metric else None
        if score is None or not math.isfinite(score):
            return
        best = self.run_dir / ckpt.BEST_FILE
        before = ckpt.read_meta(best).get("val", {}).get(self.best_metric) if best.is_file() else None
        if before is None or score < before:
            ckpt.save(best, weights, meta)

    def _restore(self) -> None:
        from ..world_model import model_weights

        tensors, meta = ckpt.load(self.run_dir / ckpt.RESUME_FILE)
        if "resume" not in meta:
            raise CheckpointError(f"cannot resume {self.run_dir}: its last.safetensors was written by an older "
                                  f"worldjepa ({meta.get('library_version')}) in another layout")
        self.model.load_state_dict(model_weights(tensors))
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
        self.budget.calibrated, self.last_val, self.saved_step = bool(r["calibrated"]), meta.get("val", {}), self.step
        self.load_task_state(tensors, r.get("task", {}))
        path = self.run_dir / "metrics.jsonl"
        if self.is_main and path.is_file():  # drop lines logged after the checkpoint (and a torn last one)
            from ..atomic import atomic_write_text

            keep = [row for row in read_metrics(path) if row.get("step", 0) <= self.step]
            atomic_write_text(path, "".join(json.dumps(row) + "\n" for row in keep))
        logger.info("resumed %s at step %d of %d", self.run_dir, self.step, self.total)
