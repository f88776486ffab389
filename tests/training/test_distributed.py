"""torchrun with 2 gloo processes is the same training as one process on the same global batch.

Two ranks with ``--batch-size B`` draw the global batch of ``2 B`` with one shared generator
and keep their halves, BatchNorm (GlooSyncBatchNorm on the CPU) and SIGReg compute their
statistics over both, DDP averages the gradients: after a few steps of ``train`` and of
``pretrain`` the weights (and BatchNorm's running statistics) equal those of one process run
with ``--batch-size 2B``, to 1e-5.

Both run in float64 (tests/training/float64_cli.py): in float32, AdamW turns the rounding noise
of gradients that are zero in exact arithmetic (a bias just before a normalisation layer) into
steps of +-lr, so any two runs that add in another order part by ~1e-3 there; one process with
--threads 1 against --threads 2 does too (docs/world_model.md). In float64 the two agree to ~1e-11.
"""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from tests.conftest import ROOT
from worldjepa import checkpoint as ckpt
from worldjepa.data.collect import CollectConfig, collect

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")
B, STEPS = 8, 3


@pytest.fixture(scope="module")
def tworoom(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(out), episodes=16, steps=24, size=32), progress=False)
    return str(out)


FLOAT64_CLI = str(ROOT / "tests" / "training" / "float64_cli.py")


def _run(*args: str, ranks: int = 0) -> None:
    """``worldjepa ARGS`` in float64: one process, or ``ranks`` under torchrun."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
    launch = ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks)] if ranks else []
    proc = subprocess.run([sys.executable, *launch, FLOAT64_CLI, *args], capture_output=True, text=True, env=env,
                          timeout=300)
    # a rank's own error comes first in stderr, the launcher's summary last: show both
    assert proc.returncode == 0, proc.stderr[:3000] + "\n[...]\n" + proc.stderr[-1500:]


def _assert_same_weights(a, b) -> None:
    ta, tb = ckpt.load(a)[0], ckpt.load(b)[0]
    weights = sorted(k for k in ta if k.startswith("model/"))
    assert weights == sorted(k for k in tb if k.startswith("model/"))
    assert any("running_var" in k for k in weights)  # BatchNorm's statistics are compared too
    assert ta["model/projector.net.0.weight"].dtype == torch.float64
    for k in weights:
        torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=1e-5, msg=lambda m: f"{k}: {m}")


TRAIN = ["train", "--small", "--steps", str(STEPS), "--val-every", str(STEPS), "--save-every", str(STEPS),
         "--val-windows", "8", "--warmup-steps", "1", "--no-progress", "--threads", "1", "--device", "cpu"]


def test_train_on_two_gloo_ranks_equals_one_process_on_the_global_batch(tworoom, tmp_path):
    _run(*TRAIN, "--data", tworoom, "--out", str(tmp_path / "ddp"), "--batch-size", str(B), ranks=2)
    _run(*TRAIN, "--data", tworoom, "--out", str(tmp_path / "one"), "--batch-size", str(2 * B))
    _assert_same_weights(tmp_path / "ddp", tmp_path / "one")
    _, meta = ckpt.load(tmp_path / "ddp" / "last.safetensors")
    assert meta["step"] == STEPS and meta["resume"]["world_size"] == 2
    rows = [json.loads(line) for line in (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "val/pred_over_copy" in r] == [STEPS]  # rank 0 alone writes
    one = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    for key in ("train/loss", "val/pred_over_copy", "val/sigreg"):  # validation too: no double counting
        assert rows[-1][key] == pytest.approx(one[-1][key], rel=1e-6), key


def test_pretrain_on_two_gloo_ranks_equals_one_process_on_the_global_batch(tworoom, tmp_path):
    # temporal views, noise and a BatchNorm projector: every random draw and statistic is global
    common = ["pretrain", "--data", tworoom, "--steps", str(STEPS), "--encoder-dim", "32", "--channels", "8,16",
              "--projector-hidden", "32", "--sigreg-slices", "32", "--temporal", "2", "--noise", "0.05",
              "--eval-frames", "50", "--no-progress", "--threads", "1", "--device", "cpu"]
    _run(*common, "--out", str(tmp_path / "ddp"), "--batch-size", str(B), ranks=2)
    _run(*common, "--out", str(tmp_path / "one"), "--batch-size", str(2 * B))
    _assert_same_weights(tmp_path / "ddp", tmp_path / "one")


def test_half_the_batch_is_another_training(tworoom, tmp_path):
    """The comparison above can tell trainings apart: one process on one rank's share ends elsewhere."""
    _run(*TRAIN, "--data", tworoom, "--out", str(tmp_path / "half"), "--batch-size", str(B))
    _run(*TRAIN, "--data", tworoom, "--out", str(tmp_path / "one"), "--batch-size", str(2 * B))
    ta, tb = ckpt.load(tmp_path / "half")[0], ckpt.load(tmp_path / "one")[0]
    assert max(float((ta[k] - tb[k]).abs().max()) for k in ta if k.startswith("model/projector")) > 1e-3


def test_gloo_sync_batchnorm_is_batchnorm_without_a_group():
    from worldjepa.training.distributed import GlooSyncBatchNorm, sync_batchnorm

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.Linear(6, 2))
    ref = torch.nn.Sequential(*[m for m in model])  # the same modules, before conversion
    x = torch.randn(10, 4)
    want = ref(x)
    state = {k: v.clone() for k, v in ref.state_dict().items()}
    conv = sync_batchnorm(model, torch.device("cpu"))
    assert isinstance(conv[1], GlooSyncBatchNorm) and conv.state_dict().keys() == state.keys()
    conv.load_state_dict(state)
    torch.testing.assert_close(conv(x), want)
