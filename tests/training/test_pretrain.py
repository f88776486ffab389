"""LeJEPA pretraining: learning happens, exact resume, image folders, collapse, NaN, CLI."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from worldjepa.data.collect import CollectConfig, collect
from worldjepa.configs import EncoderConfig
from worldjepa.errors import WorldJepaError
from worldjepa.eval.probes import evaluate_encoder
from worldjepa import checkpoint as ckpt
from worldjepa.training import pretrain as P

P.EncoderConfig = EncoderConfig  # shorthand for the tests below

TINY = dict(steps=40, batch_size=32, encoder=P.EncoderConfig(dim=64, channels=(32, 64, 128, 256)), projector_hidden=64,
            projector_dim=16, sigreg_slices=64, lr=3e-3, log_every=1, probe_every=10, save_every=1000, eval_frames=0,
            progress=False, device="cpu")


@pytest.fixture(scope="module")
def tworoom(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(out), episodes=30, steps=20, size=32), progress=False)
    return out


@pytest.fixture(scope="module")
def trained(tworoom, tmp_path_factory):
    torch.set_num_threads(2)
    out = tmp_path_factory.mktemp("run")
    cfg = P.PretrainConfig(data=str(tworoom), out=str(out / "run"), **TINY)
    return cfg, P.pretrain(cfg)


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_the_loss_beats_the_untrained_encoder_and_writes_loadable_checkpoints(tworoom, trained):
    cfg, result = trained
    run = P.Path(cfg.out)
    rows = _metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 41))
    assert {"train/loss", "train/sigreg", "train/pred", "train/lr"} <= set(rows[-1])
    assert "probe/r2" in rows[9] and "probe/rank" in rows[9] and "probe/r2" not in rows[8]
    late = np.mean([r["train/sigreg"] for r in rows[-10:]])
    assert late < 0.7 * rows[0]["train/sigreg"], (rows[0], late)  # the regulariser is being optimised
    torch.manual_seed(cfg.seed)
    untrained = evaluate_encoder(P.build_encoder_model(cfg, 32), tworoom)
    assert result["eval"]["eval/r2"] > untrained["eval/r2"] + 0.05, (result["eval"], untrained)
    model, meta = P.load_encoder_model(run)  # the saved weights give the same evaluation
    assert meta["step"] == 40 and meta["config"]["steps"] == 40 and meta["model"]["size"] == 32
    assert evaluate_encoder(model, tworoom)["eval/r2"] == pytest.approx(result["eval"]["eval/r2"], abs=1e-9)
    assert json.loads((run / "eval.json").read_text()) == result["eval"]
    _, last = ckpt.load(run / ckpt.RESUME_FILE)
    assert last["finished"] and last["total_steps"] == 40


def test_no_regulariser_collapses_in_scale_and_drops_the_gaussian_term(tworoom, trained, tmp_path):
    """Invariance alone: views agree, the projections shrink and stay far from N(0, I).

    (At this scale the RankMe gap between the two runs is not reliable; rank on a known
    collapse is tested in tests/eval/test_probes.py.)
    """
    cfg, result = trained
    rows_sig = _metrics(P.Path(cfg.out))
    none = P.pretrain(replace(cfg, regularizer="none", out=str(tmp_path / "none")))
    # collapse of scale: the held-out projections shrink to a point (RankMe is scale-free)
    assert none["eval"]["eval/proj_std"] < 0.05 * result["eval"]["eval/proj_std"], (none["eval"], result["eval"])
    rows = _metrics(tmp_path / "none")
    assert rows[-1]["train/loss"] == pytest.approx(rows[-1]["train/pred"])  # lambda forced to 0
    assert rows[-1]["train/pred"] < 0.05 * rows_sig[-1]["train/pred"]
    assert np.mean([r["train/sigreg"] for r in rows[-10:]]) > 1.5 * np.mean([r["train/sigreg"] for r in rows_sig[-10:]])


def test_vicreg_baseline_runs(tworoom, trained, tmp_path):
    cfg, _ = trained
    result = P.pretrain(replace(cfg, regularizer="vicreg", steps=5, out=str(tmp_path / "vic")))
    assert {"train/loss", "train/pred", "train/vicreg"} <= set(result) and np.isfinite(result["train/loss"])


def test_temporal_views_pair_nearby_frames_of_one_episode(tworoom, tmp_path):
    from worldjepa.data.images import load_frames

    fr = load_frames(tworoom, "train")
    idx = np.arange(len(fr))
    for d in (-3, 1, 2):
        j = fr.neighbours(idx, np.full_like(idx, d))
        moved = j != idx
        assert np.all(fr.episodes[j] == fr.episodes)  # never across episodes
        assert np.all(fr.times[j][moved] - fr.times[moved] == d)  # exactly d steps away when it can be
        assert np.all((fr.times[~moved] + d < 0) | (fr.times[~moved] + d > fr.times.max()) |
                      (fr.episodes[np.clip(idx[~moved] + d, 0, len(fr) - 1)] != fr.episodes[~moved]))
    sub = fr.subset(np.arange(0, len(fr), 2))  # a capped subset: gaps are never bridged
    j = sub.neighbours(np.arange(len(sub)), np.ones(len(sub), np.int64))
    assert np.all(j == np.arange(len(sub)))
    # a short run with temporal views trains, resumes exactly and refuses image folders
    cfg = P.PretrainConfig(data=str(tworoom), out=str(tmp_path / "t"),
                           **{**TINY, "steps": 6, "batch_size": 16, "eval_frames": 50, "temporal": 3})
    res = P.pretrain(cfg)
    assert np.isfinite(res["train/loss"]) and res["train/pred"] > 0
    P.pretrain(replace(cfg, out=str(tmp_path / "u"), stop_at=3))
    P.pretrain(replace(cfg, out=str(tmp_path / "u"), resume=True))
    a, b = _metrics(tmp_path / "t"), _metrics(tmp_path / "u")
    assert a[-1]["train/loss"] == pytest.approx(b[-1]["train/loss"], rel=1e-6)
    _png_folder(tmp_path / "imgs", per_class=3)  # an image folder: no episodes, so views of the one image
    res = P.pretrain(replace(cfg, data=str(tmp_path / "imgs"), out=str(tmp_path / "v"), steps=2))
    assert np.isfinite(res["train/loss"])
    assert P.load_encoder_model(tmp_path / "v")[1]["config"]["temporal"] == 0  # the run records what it did


def test_resume_continues_exactly(tworoom, tmp_path):
    base = P.PretrainConfig(data=str(tworoom), out=str(tmp_path / "a"),
                            **{**TINY, "steps": 8, "probe_every": 3, "batch_size": 16, "eval_frames": 50})
    P.pretrain(base)
    P.pretrain(replace(base, out=str(tmp_path / "b"), stop_at=4))
    assert "eval" not in P.pretrain(replace(base, out=str(tmp_path / "b"), stop_at=6, resume=True))
    P.pretrain(replace(base, out=str(tmp_path / "b"), resume=True))
    a, b = _metrics(tmp_path / "a"), _metrics(tmp_path / "b")
    assert [r["step"] for r in b] == list(range(1, 9))
    assert [r["step"] for r in b if "probe/r2" in r] == [3, 6, 8]  # the online probe resumed too
    for ra, rb in zip(a, b):
        ra.pop("time"), rb.pop("time"), ra.pop("train/steps_per_s", None), rb.pop("train/steps_per_s", None)
        assert ra == pytest.approx(rb, rel=1e-6, abs=1e-9), ra["step"]
    with pytest.raises(WorldJepaError, match="already holds a run"):
        P.pretrain(base)


def _png_folder(root, per_class=10):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = rng.integers(0, 60, (40, 48, 3)).astype(np.uint8)
            x, y = rng.integers(0, 24, 2)
            img[y:y + 16, x:x + 16] = colour
            Image.fromarray(img).save(root / name / f"{i}.png")


def test_image_folder_with_labels(tmp_path):
    _png_folder(tmp_path / "imgs")
    cfg = P.PretrainConfig(data=str(tmp_path / "imgs"), out=str(tmp_path / "run"), size=32,
                           **{**TINY, "steps": 8, "batch_size": 8})
    ev = P.pretrain(cfg)["eval"]
    assert ev["eval/n_train"] + ev["eval/n_test"] == 20 and ev["eval/n_test"] >= 1
    assert ev["eval/linear_acc"] == 1.0 and ev["eval/knn_acc"] >= 0.5
    assert "probe/acc" in _metrics(tmp_path / "run")[7]


def test_nan_loss_names_the_step_and_keeps_the_last_good_checkpoint(tworoom, tmp_path, monkeypatch):
    build = P.build_encoder_model

    def poisoned(cfg, size):
        model = build(cfg, size)
        calls = {"n": 0}

        def nan_at_step_4(module, inputs, output):
            calls["n"] += 1
            return output * float("nan") if calls["n"] == 4 else output  # the 4th forward is step 4 (from 1)

        model.projector.register_forward_hook(nan_at_step_4)
        return model

    monkeypatch.setattr(P, "build_encoder_model", poisoned)
    cfg = P.PretrainConfig(data=str(tworoom), out=str(tmp_path / "run"), **{**TINY, "save_every": 2})
    with pytest.raises(P.TrainingError, match=r"at step 4: .*\(step 2\) is intact"):
        P.pretrain(cfg)
    tensors, meta = ckpt.load(tmp_path / "run" / ckpt.RESUME_FILE)
    assert meta["step"] == 2 and all(torch.isfinite(t.float()).all() for t in tensors.values())


def test_cli_help_run_and_errors(cli, tmp_path):
    out = cli("pretrain", "--help", check=True).stdout
    for flag in ("--data", "--out", "--minutes", "--steps", "--resume", "--regularizer", "--encoder", "--small",
                 "--encoder-dim", "--embed-dim", "--no-progress", "--device"):
        assert flag in out
    _png_folder(tmp_path / "imgs", per_class=4)
    run = tmp_path / "run"
    proc = cli("pretrain", "--data", str(tmp_path / "imgs"), "--out", str(run), "--steps", "3", "--batch-size", "4",
               "--size", "32", "--no-progress", "--device", "cpu", "embed_dim=32", "slices=32", check=True)
    assert "eval/linear_acc" in proc.stdout and "eval/rank" in proc.stdout
    assert (run / "model.safetensors").is_file() and (run / "eval.json").is_file()
    for data, needle in ((tmp_path / "missing", "no such file"), (tmp_path / "empty", "holds no images")):
        (tmp_path / "empty").mkdir(exist_ok=True)
        proc = cli("pretrain", "--data", str(data), "--out", str(tmp_path / "x"), "--steps", "2")
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("worldjepa")]
        assert len(lines) == 1 and needle in lines[0], proc.stderr


def test_vit_tiny_encoder_and_local_views_train_and_reload(tworoom, tmp_path):
    """The ViT-tiny option and local views go through a real (short) run and a reload."""
    cfg = P.PretrainConfig(data=str(tworoom), out=str(tmp_path / "vit"),
                           **{**TINY, "steps": 3, "batch_size": 8, "eval_frames": 40,
                              "encoder": EncoderConfig(kind="vit_tiny", dim=32)}, n_local=2)
    res = P.pretrain(cfg)
    assert np.isfinite(res["train/loss"]) and "eval/r2" in res["eval"]
    model, meta = P.load_encoder_model(tmp_path / "vit")
    assert meta["model"]["encoder"]["kind"] == "vit_tiny"
    assert evaluate_encoder(model, tworoom, max_frames=40)["eval/r2"] == pytest.approx(res["eval"]["eval/r2"], abs=1e-9)


def test_threads_option_sets_torch_threads_also_on_resume(tworoom, tmp_path):
    n = torch.get_num_threads()
    cfg = P.PretrainConfig(data=str(tworoom), out=str(tmp_path / "t"), **{**TINY, "steps": 3, "eval_frames": 50})
    try:
        torch.set_num_threads(2)
        P.pretrain(replace(cfg, threads=1, stop_at=2))
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        P.pretrain(replace(cfg, threads=1, resume=True))  # the launch's value, not the saved run's
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)


def test_pretrain_tensorboard_flag_and_its_resume(tworoom, tmp_path):
    """--tensorboard on pretrain: the run's metrics in RUN_DIR/tb; a resume takes this launch's flag."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tiny = {**TINY, "steps": 4, "probe_every": 2, "encoder": P.EncoderConfig(dim=16, channels=(8, 8, 8, 8))}
    cfg = P.PretrainConfig(data=str(tworoom), out=str(tmp_path / "run"), stop_at=2, **tiny)
    P.pretrain(cfg)
    assert not (tmp_path / "run" / "tb").exists()  # off unless asked
    P.pretrain(replace(cfg, stop_at=0, resume=True, tensorboard=True))
    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    assert {"train/loss", "probe/r2"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Scalars("train/loss")] == [3, 4]
