"""docs/data.md is right: its reader, run without worldjepa, reads what worldjepa wrote."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ROOT


def reader_code() -> str:
    text = (ROOT / "docs" / "data.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    code = [b for b in blocks if b.startswith("# reader:")]
    assert len(code) == 1, "docs/data.md must hold one python block starting with '# reader:'"
    return code[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory, cli):
    root = tmp_path_factory.mktemp("formats")
    data, run, res = root / "d.h5", root / "run", root / "results.json"
    cli("collect", "--env", "worldjepa/PointMaze-UMaze-v0", "--episodes", "23", "--steps", "30", "--size", "16",
        "--out", str(data), "--no-progress", check=True)
    cli("train", "--data", str(data), "--out", str(run), "--small", "--steps", "3", "--no-progress", "--threads", "1",
        "--device", "cpu", "--proprio", "state[2:4]", check=True)
    cli("eval", "--data", str(data), "--policy", "random", "--episodes", "2", "--goal-offset", "25", "--budget", "2",
        "--json", str(res), "--no-progress", check=True)
    return data, run, res


@pytest.fixture(scope="module")
def cli():
    from tests.conftest import run_cli

    return run_cli


def test_the_documented_reader_needs_no_worldjepa_and_agrees_with_it(files, tmp_path):
    import torch

    from worldjepa.data.dataset import Dataset
    from worldjepa.world_model import load_world_model

    data, run, _ = files
    script = reader_code() + f"""
import sys
ds = read_dataset({str(data)!r})
meta, weights = read_checkpoint({str(run / "model.safetensors")!r})
assert not [m for m in sys.modules if m.split(".")[0] in ("worldjepa", "torch")], "the reader imported them"
np.savez({str(tmp_path / "out.npz")!r}, frames3=ds["episodes"][3]["frames"], actions3=ds["episodes"][3]["actions"],
         state3=ds["episodes"][3]["extras"]["state"], **{{"w/" + k: v for k, v in weights.items()}})
print(json.dumps({{"splits": ds["splits"], "sha256": ds["sha256"], "meta": ds["meta"], "ckpt": meta,
                  "episodes": len(ds["episodes"]), "bad": ds["bad"]}}))
"""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    arrays = np.load(tmp_path / "out.npz")
    with Dataset(data) as ds:
        ep = ds.episode(3)
        np.testing.assert_array_equal(arrays["frames3"], ep["frames"])
        np.testing.assert_array_equal(arrays["actions3"], ep["actions"])
        np.testing.assert_array_equal(arrays["state3"], ep["state"])
        assert got["splits"] == [["train", "val", "test"][s] for s in ds.splits]
        assert got["sha256"] == ds.fingerprint()["sha256"] == got["ckpt"]["dataset"]["sha256"]
        assert got["episodes"] == ds.num_episodes == 23 and got["meta"]["env_id"] == ds.env_id
        assert got["bad"] == [] and got["meta"]["format_version"] == 2  # the documented checksums match
    meta = got["ckpt"]
    assert meta["format"] == "worldjepa-checkpoint" and meta["kind"] == "world_model" and meta["step"] == 3
    assert meta["model"]["encoder"]["kind"] == "cnn" and meta["model"]["proprio"] == "state[2:4]"
    assert meta["config"]["steps"] == 3 and meta["action_space"]["dim"] == 2
    model, _ = load_world_model(run)
    state = model.state_dict()
    assert {k[2:] for k in arrays.files if k.startswith("w/")} == set(state)
    for name in ("encoder.convs.0.weight", "proprio_enc.linear.weight", "proprio_enc.mean"):
        np.testing.assert_array_equal(arrays[f"w/{name}"], state[name].numpy())
    assert isinstance(state["proprio_enc.mean"], torch.Tensor)


def test_metrics_and_results_are_as_documented(files):
    _, run, res = files
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows) and all("time" in r for r in rows)
    assert {"train/loss", "train/pred", "train/rollout", "train/reg", "train/lr", "train/grad_norm"} <= set(rows[-1])
    assert any(k.startswith("val/pred_mse_h") for k in rows[-1])
    assert json.loads((run / "config.json").read_text())["step"] == 3
    result = json.loads(res.read_text())
    assert set(result) == {"format", "format_version", "library_version", "summary", "records", "protocol", "config",
                           "env_id", "dataset", "checkpoints", "policy_name"}
    assert result["policy_name"] == result["config"]["policy"]  # a reference policy, named without options
    assert result["format"] == "worldjepa-eval-results" and result["format_version"] == 3
    assert result["dataset"] == json.loads((run / "config.json").read_text())["dataset"]  # the data the run saw
    assert result["checkpoints"] == []  # a reference policy
    assert {"episodes", "successes", "success_rate", "ci95", "mean_final_distance", "mean_steps_to_success",
            "seconds"} <= set(result["summary"])
    assert set(result["records"][0]) == {"episode", "start", "success", "steps", "final_distance", "start_state",
                                         "goal_state"}
    assert set(result["protocol"]) == {"goal_offset", "budget", "split", "far", "far_min_steps", "far_budget_factor",
                                       "far_min_distance", "far_goals", "restore", "solved_at_start_redrawn",
                                       "episode_seeding"}
    assert result["config"]["agent"]["planner"]["name"] == "cem"  # the agent's options are recorded
