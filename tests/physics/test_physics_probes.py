"""Physical probes: the MLP probe fits what a linear one cannot, quantities per env, and the command."""

import json

import numpy as np
import pytest

from tests.conftest import run_cli as cli
from worldjepa.metrics import linear_r2
from worldjepa.physics.probes import mlp_r2, quantities


def test_the_mlp_probe_reads_a_nonlinear_quantity_the_linear_one_cannot():
    rng = np.random.default_rng(0)
    z = rng.uniform(-2, 2, (1200, 6))
    y = np.stack([np.sin(2 * z[:, 0]) + z[:, 1] ** 2, 3 * z[:, 2] - z[:, 3]], 1)  # nonlinear, linear
    r2, pred = mlp_r2(z[:1000], y[:1000], z[1000:], y[1000:])
    lin = linear_r2(z[:1000], y[:1000], z[1000:], y[1000:])["r2_per_target"]
    assert r2[0] > 0.9 and lin[0] < 0.3  # only the MLP reads the nonlinear one
    assert r2[1] > 0.98 and lin[1] > 0.99  # both read the linear one
    assert pred.shape == (200, 2)
    noise_r2, _ = mlp_r2(z[:1000], rng.standard_normal((1000, 1)), z[1000:], rng.standard_normal((200, 1)))
    assert noise_r2[0] < 0.05  # early stopping keeps it from inventing structure
    dead = z.copy()
    dead[:1000, 5], dead[1000:, 5] = 0.0, 50.0  # a feature constant in training, alive in the test rows
    assert mlp_r2(dead[:1000], y[:1000], dead[1000:], y[1000:])[0][1] > 0.95  # ignored, not blown up


def test_quantities_per_env():
    s = np.array([[0.5, -3.0, 1.0, 2.0]])
    assert list(quantities("worldjepa/TwoRoom-v0", s[:, :2])) == ["x", "y"]
    q = quantities("worldjepa/Reacher-v0", s)
    assert set(q) == {"sin theta1", "cos theta1", "sin theta2", "cos theta2", "dtheta1", "dtheta2"}
    assert q["sin theta2"][0] == pytest.approx(np.sin(-3.0)) and q["dtheta2"][0] == 2.0
    pusht = quantities("worldjepa/PushT-v1", np.arange(8.0)[None])
    assert pusht["block x"][0] == 2.0 and pusht["cos block angle"][0] == pytest.approx(np.cos(4.0))
    assert list(quantities("Pendulum-v1", s)) == ["state[0]", "state[1]", "state[2]", "state[3]"]
    assert len(quantities("worldjepa/Balls-v0", np.zeros((1, 12)))) == 12


def test_probe_command_writes_the_table_json_and_scatter(tworoom_run, tmp_path):
    data, out = tworoom_run.parent / "tworoom.h5", tmp_path / "probe"
    proc = cli("probe", "--run", str(tworoom_run), "--data", str(data), "--out", str(out), "--max-frames", "300",
               "--mlp-steps", "50", "--threads", "1", check=True)
    assert "\nx " in proc.stdout and "\ny " in proc.stdout and "random init" in proc.stdout
    res = json.loads((out / "probe.json").read_text())
    assert res["env_id"] == "worldjepa/TwoRoom-v0" and res["quantities"] == ["x", "y"]
    assert len(res["encoders"]) == 2 and all(np.isfinite(e["linear"]["x"]) for e in res["encoders"])
    assert len(res["truth"]["x"]) == res["test_frames"] == len(res["encoders"][0]["pred"]["x"])
    from PIL import Image

    with Image.open(out / "probe.png") as im:
        assert im.format == "PNG"
    bad = cli("probe", "--run", str(tworoom_run), "--data", str(tmp_path / "missing.h5"))
    assert bad.returncode == 2 and "no such file or run" in bad.stderr
