"""The process group of a ``torchrun`` launch: started by the training loop, torn down together.

Tearing down is the delicate part: a rank that destroys the group or exits while gloo's threads
still talk to another rank aborts (SIGABRT). :func:`close_process_group` therefore waits at a
barrier, then, through the launcher's key-value store (not gloo's sockets), makes every rank
wait until all have left it before destroying the group, and until all have destroyed it
before going on to exit.
"""

from __future__ import annotations

import time

import torch

__all__ = ["close_process_group"]


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
