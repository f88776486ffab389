"""The process group of a ``torchrun`` launch: BatchNorm statistics over every rank's batch, a
rank's share of a global batch, and the group's teardown.

Under DDP a run of ``W`` processes with ``--batch-size B`` must be the same training as one
process with ``W * B``: every statistic that depends on the whole batch is computed over all
ranks. SIGReg all-reduces its ECF itself (:mod:`worldjepa.losses.sigreg`); BatchNorm is
converted by :func:`sync_batchnorm` (torch's ``SyncBatchNorm`` on CUDA, where it runs;
:class:`GlooSyncBatchNorm` on the CPU, where torch's refuses); and every rank draws the same
global batch with the same generator and keeps its :func:`shard` of it, so the ranks' samples
together are exactly the batch one process draws.

Tearing down is the delicate part: a rank that destroys the group or exits while gloo's threads
still talk to another rank aborts (SIGABRT). :func:`close_process_group` therefore waits at a
barrier, then, through the launcher's key-value store (not gloo's sockets), makes every rank
wait until all have left it before destroying the group, and until all have destroyed it
before going on to exit.
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..losses.sigreg import _AllReduceSum as AllReduceSum  # a sum over ranks, and its gradient

__all__ = ["GlooSyncBatchNorm", "close_process_group", "shard", "sync_batchnorm"]


def _world() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard(values: Any, axis: int = 0) -> Any:
    """This rank's contiguous share of a global batch drawn identically on every rank (numpy
    array or tensor, split along ``axis`` into world-size equal parts): rank ``r`` of ``W``
    keeps part ``r``. The whole batch without a process group."""
    rank, world = _world()
    n = values.shape[axis]
    if n % world:
        raise ValueError(f"a global batch of {n} does not split into {world} equal shares")
    index = [slice(None)] * values.ndim
    index[axis] = slice(rank * n // world, (rank + 1) * n // world)
    return values[tuple(index)]


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics span every rank's batch, on any device and backend
    (gloo on the CPU): the mean and then the (biased) variance of the inputs of all ranks, each
    summed over ranks with a differentiable all-reduce (two passes, as one process computes
    them), and the running statistics updated with the global values (unbiased variance over
    the global count), identical on every rank. Evaluation mode, or no process group, is plain
    BatchNorm. Its state dict is BatchNorm's: a converted model saves and loads as the original.
    Inputs ``(N, C)`` or ``(N, C, ...)``."""

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected (N, C) or (N, C, ...) input, got {tuple(x.shape)}")

    def forward(self, x: Tensor) -> Tensor:
        self._check_input_dim(x)
        if not self.training or _world()[1] == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([x.numel() / x.shape[1]], dtype=torch.float64, device=x.device)
        dist.all_reduce(count)  # the global number of values per channel (no gradient)
        n = float(count)
        mean = AllReduceSum.apply(x.sum(dims)) / n  # (C,)
        centred = x - mean.view(shape)
        var = AllReduceSum.apply(centred.square().sum(dims)) / n  # (C,) biased, as BatchNorm normalises
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1.0)), alpha=m)
        return y


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every BatchNorm layer computing its statistics over all ranks: torch's
    ``SyncBatchNorm`` on CUDA, :class:`GlooSyncBatchNorm` elsewhere (weights and buffers kept)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert(model)


def _convert(module: nn.Module) -> nn.Module:
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, GlooSyncBatchNorm):
        out = GlooSyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats)
        out.load_state_dict(module.state_dict())
        out.train(module.training)
        return out.to(next(iter(module.state_dict().values())).device) if module.state_dict() else out
    for name, child in module.named_children():
        module.add_module(name, _convert(child))
    return module


def close_process_group() -> None:
    """Destroy the default process group on every rank in step (see the module docstring)."""
    dist = torch.distributed
    if not dist.is_initialized():
        return
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
