"""``worldjepa physics``: the table, physics.json and surprise.png; bad input ends with exit 2."""

import json

import numpy as np
import pytest

from tests.conftest import run_cli as cli
from tests.physics.twins import proprio_model
from worldjepa.physics.benchmark import pixel_surprise


def test_physics_writes_the_table_json_and_figure(tworoom_run, tmp_path):
    out = tmp_path / "voe"
    proc = cli("physics", "--run", str(tworoom_run), "--pairs", "2", "--untrained", "2", "--out", str(out),
               "--threads", "1", "--plots", "1", check=True)
    for kind in ("teleport", "solidity", "permanence", "continuity", "colour"):
        assert f"\n{kind} " in proc.stdout
    res = json.loads((out / "physics.json").read_text())
    assert res["env_id"] == "worldjepa/TwoRoom-v0" and res["frameskip"] == 2 and res["pairs"] == 2
    kinds = set(res["results"]["model"])
    assert kinds == {"teleport", "solidity", "permanence", "continuity", "colour"}
    for control in ("model", "untrained", "pixels"):
        for kind in kinds:
            r = res["results"][control][kind]
            assert r["pairs"] == 2 and all(0 <= r[k] <= 1 for k in ("pairwise_max", "pairwise_mean", "auroc_max"))
    untrained = res["results"]["untrained"]["teleport"]
    assert untrained["seeds"] == 2 and "auroc_max_std" in untrained
    assert len(res["curves"]) == 10 and res["curves"][0]["steps"][0] == 2
    from PIL import Image

    with Image.open(out / "surprise.png") as im:
        assert im.format == "PNG" and im.width > 300 and im.height > 3 * 150  # 5 panels, 2 columns


def test_the_twins_shared_surprise_is_drawn_as_one_curve_until_they_part():
    from worldjepa.physics.plots import BOTH, CHART_W, IMPOSSIBLE, PAD, POSSIBLE, _chart

    shared = [0.1, 0.5, 0.2, 0.4, 0.3]  # identical clips: identical surprise before the event at step 7
    curve = {"steps": list(range(2, 12)), "event": 7, "possible": shared + [0.2, 0.1, 0.2, 0.1, 0.2],
             "impossible": shared + [0.9, 1.0, 0.8, 0.7, 0.6]}
    img = np.asarray(_chart(curve, "t"))
    split_x = PAD + (6 - 2) / 9 * CHART_W  # the last shared step
    colours = lambda x0, x1: {tuple(c) for c in img[PAD:-PAD, int(x0):int(x1)].reshape(-1, 3)}  # noqa: E731
    before, after = colours(PAD + 2, split_x - 2), colours(split_x + 2, PAD + CHART_W - 2)
    assert BOTH in before and POSSIBLE not in before and IMPOSSIBLE not in before
    assert POSSIBLE in after and IMPOSSIBLE in after and BOTH not in after


def test_pixel_difference_is_the_mean_absolute_change_of_adjacent_frames():
    frames = np.zeros((3, 2, 2, 3), np.uint8)
    frames[1, 0, 0] = 120  # one pixel of 4, all channels: 120 / 4
    s, steps = pixel_surprise(frames)
    np.testing.assert_allclose(s, [30.0, 30.0])
    assert steps.tolist() == [1, 2]


@pytest.mark.parametrize("args, message", [
    (["--run", "nowhere"], "no such run: nowhere"),
    (["--pairs", "0"], "pairs"),
    (["--kinds", "teleport,gravity"], "cannot show gravity"),
    (["--pixel-run", "nopix"], "no such run: nopix"),
])
def test_bad_input_is_one_line_and_exit_2(tworoom_run, tmp_path, args, message):
    full = ["--run", str(tworoom_run), "--out", str(tmp_path / "o"), "--untrained", "0", *args]
    proc = cli("physics", *full)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written


def test_a_model_with_proprioception_is_scored_with_the_clips_states():
    from worldjepa.physics.benchmark import run_voe

    model, meta = proprio_model("worldjepa/TwoRoom-v0", 64)
    result, pairs = run_voe((model, meta), 1, untrained=1, kinds=["teleport", "permanence"])
    assert set(result["results"]["untrained"]) == {"teleport", "permanence"} and len(pairs) == 2
    assert all(np.isfinite(c["impossible"]).all() for c in result["curves"])
