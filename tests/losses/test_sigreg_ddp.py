"""SIGReg and LeJEPA under DDP (2 gloo processes) equal one process on the whole batch.

Rule checked here: each rank computes the loss on its shard; SIGReg all-reduces the ECF
with an autograd-aware sum; DistributedDataParallel averages gradients over ranks (divides
by world size). The result equals the full-batch gradient of one process, for the SIGReg
term even with unequal shards; for the LeJEPA prediction term (a local mean) with equal ones.
"""

import datetime
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from worldjepa.losses import SIGReg, lejepa_loss

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")

WORLD = 2
N, V_G, V = 32, 2, 4


def _encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 16)).double()


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 8, generator=g, dtype=torch.float64)  # (N, 8) for SIGReg
    views = torch.randn(V, N, 8, generator=g, dtype=torch.float64)  # (V, N, 8) for LeJEPA
    return x, views


def _sigreg_loss(model, x):
    return SIGReg(num_slices=64, seed=3)(model(x))


def _lejepa(model, views):
    z = model(views)  # (V, N, 16)
    return lejepa_loss(z[:V_G], z, SIGReg(num_slices=64, seed=3), lam=0.3)


def _worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=WORLD, timeout=datetime.timedelta(seconds=60))
    try:
        torch.set_num_threads(1)
        x, views = _data()
        res = {}
        # SIGReg alone, unequal shards (20 / 12 samples): count weighting must be right
        model = nn.parallel.DistributedDataParallel(_encoder())
        cut = 20
        loss = _sigreg_loss(model, x[:cut] if rank == 0 else x[cut:])
        loss.backward()
        res["sigreg"] = loss.detach()
        res["sigreg_grads"] = [p.grad.clone() for p in model.parameters()]
        # LeJEPA, equal shards
        model = nn.parallel.DistributedDataParallel(_encoder())
        half = N // WORLD
        out_d = _lejepa(model, views[:, rank * half:(rank + 1) * half])
        out_d["loss"].backward()
        res["lejepa"] = {k: v.detach() for k, v in out_d.items()}
        res["lejepa_grads"] = [p.grad.clone() for p in model.parameters()]
        torch.save(res, f"{out}/rank{rank}.pt")
        dist.barrier()  # no rank tears gloo down while the other still talks to it (SIGABRT once in CI)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_equals_single_process(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    x, views = _data()
    model = _encoder()
    loss = _sigreg_loss(model, x)
    loss.backward()
    grads = [p.grad.clone() for p in model.parameters()]
    for res in ranks:
        torch.testing.assert_close(res["sigreg"], loss.detach(), rtol=1e-5, atol=1e-10)
        for g_ddp, g in zip(res["sigreg_grads"], grads):
            torch.testing.assert_close(g_ddp, g, rtol=1e-5, atol=1e-10)

    model = _encoder()
    full = _lejepa(model, views)
    full["loss"].backward()
    grads = [p.grad.clone() for p in model.parameters()]
    for res in ranks:
        torch.testing.assert_close(res["lejepa"]["sigreg"], full["sigreg"].detach(), rtol=1e-5, atol=1e-10)
        for g_ddp, g in zip(res["lejepa_grads"], grads):
            torch.testing.assert_close(g_ddp, g, rtol=1e-5, atol=1e-10)
    # "pred" is a local mean: the ranks' mean equals the full-batch value
    mean_pred = sum(r["lejepa"]["pred"] for r in ranks) / WORLD
    torch.testing.assert_close(mean_pred, full["pred"].detach(), rtol=1e-5, atol=1e-10)
    mean_loss = sum(r["lejepa"]["loss"] for r in ranks) / WORLD
    torch.testing.assert_close(mean_loss, full["loss"].detach(), rtol=1e-5, atol=1e-10)
