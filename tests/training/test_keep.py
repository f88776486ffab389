"""--keep K: the weights of the last K saves in RUN/checkpoints/, and best.safetensors, the best
validation so far; the default keeps model.safetensors alone."""

import json

import pytest
import torch

from worldjepa import checkpoint as ckpt
from worldjepa.cli import main
from worldjepa.data.collect import CollectConfig, collect


@pytest.fixture(scope="module")
def tworoom(tmp_path_factory):
    out = tmp_path_factory.mktemp("keep") / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(out), episodes=12, steps=20, size=32), progress=False)
    return str(out)


def _train(data, run, *extra):
    return main(["train", "--data", data, "--out", str(run), "--small", "--steps", "8", "--save-every", "2",
                 "--val-every", "2", "--val-windows", "8", "--no-progress", "--threads", "1", "--device", "cpu", *extra])


def test_keep_k_keeps_the_last_k_saves_and_the_best_validation(tworoom, tmp_path):
    run = tmp_path / "run"
    assert _train(tworoom, run, "--keep", "3", "--steps", "6") == 0
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert kept == ["step_0000002.safetensors", "step_0000004.safetensors", "step_0000006.safetensors"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    vals = {r["step"]: r["val/pred_over_copy"] for r in rows if "val/pred_over_copy" in r}
    assert sorted(vals) == [2, 4, 6]
    best_step = min(vals, key=vals.get)
    best_tensors, best_meta = ckpt.load(run / "best.safetensors")
    assert best_meta["step"] == best_step and best_meta["val"]["val/pred_over_copy"] == vals[best_step]
    step_t = ckpt.load(run / "checkpoints" / f"step_{best_step:07d}.safetensors")[0]
    assert all(torch.equal(step_t[k], best_tensors[k]) for k in best_tensors)  # the best save's weights
    last = ckpt.load(run / "checkpoints" / "step_0000006.safetensors")[0]
    model = ckpt.load(run)[0]
    assert all(torch.equal(last[k], model[k]) for k in model)  # the last save is model.safetensors


def test_keep_two_rotates_and_the_default_keeps_model_safetensors_alone(tworoom, tmp_path):
    assert _train(tworoom, tmp_path / "two", "--keep", "2") == 0
    assert sorted(p.name for p in (tmp_path / "two" / "checkpoints").iterdir()) == [
        "step_0000006.safetensors", "step_0000008.safetensors"]
    assert _train(tworoom, tmp_path / "one") == 0
    assert not (tmp_path / "one" / "checkpoints").exists() and not (tmp_path / "one" / "best.safetensors").exists()
    assert main(["eval", "--data", tworoom, "--policy", str(tmp_path / "two" / "best.safetensors"), "--episodes", "1",
                 "--budget", "2", "--goal-offset", "5", "--samples", "8", "--iterations", "1", "--no-progress"]) == 0
