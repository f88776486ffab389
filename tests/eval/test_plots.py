"""Figures: `worldjepa plot` (curves of several runs) and `eval --plot` (success with its CI), and
`eval --tensorboard` (a run's evaluation beside its training curves)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worldjepa.eval.plots import COLORS, PANEL_W, _tick_labels, curves_figure, results_figure, short_names

from tests.conftest import tiny_run


def _run(path, rows):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _has(img, color):
    return bool((np.asarray(img.convert("RGB")) == np.array(color, np.uint8)).all(-1).any())


def test_plot_draws_each_run_in_each_panel(cli, tmp_path):
    a = _run(tmp_path / "a", [{"step": s, "train/loss": 1 / s, **({"val/pred_over_copy": 0.9 - s / 100,
                                                                     "val/probe_r2": s / 40} if s % 10 == 0 else {})}
                               for s in range(1, 31)])
    b = _run(tmp_path / "b", [{"step": s, "train/loss": 2 / s} for s in range(1, 21)])  # no validation logged
    out = tmp_path / "curves.png"
    proc = cli("plot", str(a), str(b), "--out", str(out), check=True)
    assert "train/loss, val/pred_over_copy, val/probe_r2 of 2 run(s)" in proc.stdout
    img = Image.open(out)
    assert img.size[0] == 3 * PANEL_W
    arr = np.asarray(img.convert("RGB"))
    for panel, runs in ((0, (0, 1)), (1, (0,)), (2, (0,))):  # b logged only the loss
        crop = Image.fromarray(arr[:, panel * PANEL_W:(panel + 1) * PANEL_W][:200])
        for j in range(2):
            assert _has(crop, COLORS[j]) == (j in runs), (panel, j)


def test_plot_bad_input_is_one_line_with_exit_2(cli, tmp_path):
    a = _run(tmp_path / "a", [{"step": 1, "train/loss": 1.0}])
    for args, needle in (([str(tmp_path / "nope")], "no metrics.jsonl"),
                         ([str(a), "--metric", "val/nothing"], "no run logged 'val/nothing'"),
                         ([str(a), "--out", str(tmp_path / "c.jpg")], "ending in .png")):
        proc = cli("plot", *args)
        assert proc.returncode == 2 and needle in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_results_bars_end_at_the_success_rate_and_whiskers_span_the_ci():
    rows = [(name, {"protocol": {"far": False, "goal_offset": 25, "split": "test"},
                    "summary": {"success_rate": rate, "ci95": ci, "episodes": 50}})
            for name, rate, ci in (("random", 0.32, [0.21, 0.46]), ("runs/x", 1.0, [0.93, 1.0]))]
    arr = np.asarray(results_figure(rows).convert("RGB"))
    for i, (_, r) in enumerate(rows):
        band = (arr == np.array(COLORS[i], np.uint8)).all(-1)  # (H, W) this bar's pixels
        xs = np.nonzero(band.any(0))[0]
        assert abs((xs.max() - xs.min()) / 420 - r["summary"]["success_rate"]) < 0.01
    curves_figure({"a": {"train/loss": [(1, 1.0)]}}, ["train/loss"])  # one point: drawn, no error


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, one_thread):
    data, run = tiny_run(tmp_path_factory.mktemp("plots"), episodes=12, steps=40, train_steps=6)
    return Path(data), Path(run)


def test_eval_plot_and_tensorboard(cli, small_run, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data, run = small_run
    plot = tmp_path / "results.png"
    proc = cli("eval", "--data", str(data), "--policy", f"random,{run},{run}[horizon=2]", "--episodes", "3",
               "--goal-offset", "10", "--budget", "4", "--agent", "samples=8 iterations=1", "--threads", "1",
               "--plot", str(plot), "--tensorboard", "-q", "--json", str(tmp_path / "r.json"), check=True)
    assert f"TensorBoard: {run}/tb (random: no run directory)" in proc.stdout
    assert Image.open(plot).size[1] > 3 * 30
    acc = EventAccumulator(str(run / "tb"))
    acc.Reload()
    results = json.loads((tmp_path / "r.json").read_text())
    for tag, name in (("eval", str(run)), ("eval[horizon=2]", f"{run}[horizon=2]")):
        (event,) = acc.Scalars(f"{tag}/success_rate")
        assert event.step == 6 and event.value == pytest.approx(results[name]["summary"]["success_rate"])
        assert {f"{tag}/ci95_low", f"{tag}/ci95_high"} <= set(acc.Tags()["scalars"])


def test_eval_refuses_a_bad_plot_name_before_running(cli, small_run, tmp_path):
    data, _ = small_run
    proc = cli("eval", "--data", str(data), "--policy", "random", "--plot", str(tmp_path / "r.svg"))
    assert proc.returncode == 2 and "ending in .png" in proc.stderr


def test_y_tick_labels_stay_apart_when_a_curve_moves_in_its_fourth_digit():
    assert _tick_labels([0.332, 0.82, 1.3, 1.78, 2.27]) == ["0.332", "0.82", "1.3", "1.78", "2.27"]
    near_one = [0.99868 + 0.0000125 * i for i in range(5)]  # a probe's R^2 over a short run
    labels = _tick_labels(near_one)
    assert len(set(labels)) == 5 and all(abs(float(t) - v) < 1e-5 for t, v in zip(labels, near_one)), labels


def test_policy_names_in_the_results_figure_stay_apart():
    full = ["/work/runs/pusht[memory=/data/mem.db route_learn=false]", "/work/exp/ft[memory=/data/mem.db route_learn=false]"]
    assert short_names(full, 50) == ["pusht[memory=mem.db route_learn=false]", "ft[memory=mem.db route_learn=false]"]
    same_tail = ["/a/run", "/b/run"]  # cut to their last part they would read alike: kept whole
    assert short_names(same_tail, 50) == same_tail
    long = ["x" * 30 + "[samples=1000]", "x" * 30 + "[samples=300]"]  # cut in the middle: both ends kept
    shown = short_names(long, 20)
    assert all(len(n) == 20 for n in shown) and len(set(shown)) == 2 and shown[0].endswith("=1000]")
