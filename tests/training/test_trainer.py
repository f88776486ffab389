"""Training: it learns (beats copy-last), resumes exactly, stops cleanly on NaN, checks data."""

import json
import re
import sys

import numpy as np
import pytest
import torch

from tests.conftest import DEVICES
from worldjepa.config import from_dict
from worldjepa.configs import EncoderConfig
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.errors import CheckpointError, ConfigError, WorldJepaError
from worldjepa import checkpoint as ckpt
from worldjepa.configs import PRESETS, TrainConfig
from worldjepa.training.trainer import Trainer, TrainingError

SMALL = PRESETS["train"]["small"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # small kernels on a shared 2-core CPU: threads only wait
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tworoom(tmp_path_factory):
    out = tmp_path_factory.mktemp("data") / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(out), episodes=60, steps=30, size=32), progress=False)
    return str(out)


def _cfg(data, out, **kw):
    return from_dict(TrainConfig, {**SMALL, "data": data, "out": str(out), "progress": False, "device": "cpu", **kw})


def test_learns_to_predict_better_than_copying_the_last_embedding(tworoom, tmp_path):
    trainer = Trainer(_cfg(tworoom, tmp_path / "run", steps=300, val_every=300, save_every=300, batch_size=32))
    untrained = trainer.validate()
    # the residual MLP starts as the identity: exactly the copy-last baseline
    assert untrained["val/pred_over_copy"] == pytest.approx(1.0, abs=1e-3)
    summary = trainer.fit()
    assert summary["step"] == 300
    assert summary["val/pred_over_copy"] < 0.8, summary
    for h in (1, 2):  # every validated horizon, on held-out (val split) windows
        assert summary[f"val/pred_mse_h{h}"] < summary[f"val/copy_mse_h{h}"]
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if "train/loss" in r]
    assert {"train/pred", "train/reg", "train/lr"} <= set(train_rows[0]) and rows[-1]["step"] == 300
    assert any("val/rankme" in r and "val/sigreg" in r for r in rows)
    meta = ckpt.read_meta(tmp_path / "run")
    assert meta["env_id"] == "worldjepa/TwoRoom-v0" and meta["frame_size"] == 32 and meta["step"] == 300
    assert meta["dataset"]["episodes"] == 60 and len(meta["dataset"]["sha256"]) == 16
    assert meta["model"]["action_dim"] == 2 and meta["action_space"]["dim"] == 2


@pytest.mark.parametrize("device", DEVICES)
def test_resume_reproduces_the_uninterrupted_run(tworoom, tmp_path, device):
    # the transformer has dropout: the torch RNG state (the CUDA one on a GPU) must come back too
    kw = dict(steps=12, save_every=100, val_every=100, warmup_steps=3, device=device,
              model={**SMALL["model"], "predictor": "transformer", "preset": "small"})
    full = Trainer(_cfg(tworoom, tmp_path / "full", **kw))
    full.fit()
    part = Trainer(_cfg(tworoom, tmp_path / "part", **kw))
    part.fit(stop_at=6)
    assert ckpt.read_meta(tmp_path / "part" / "last.safetensors")["step"] == 6
    resumed = Trainer(_cfg(tworoom, tmp_path / "part", resume=True, **kw))
    assert resumed.step == 6
    resumed.fit()
    assert sorted(resumed.losses) == list(range(7, 13))
    for step in range(7, 13):
        assert abs(resumed.losses[step] - full.losses[step]) <= 1e-6, (step, resumed.losses[step], full.losses[step])
    assert part.losses[6] == full.losses[6]


def test_a_timed_run_never_passes_its_step_cap(tworoom, tmp_path):
    """--minutes with room to spare: the run stops at --steps, also when the cap falls on a
    re-estimate of the budget (every 20 steps)."""
    summary = Trainer(_cfg(tworoom, tmp_path / "run", steps=20, minutes=10, val_every=100, save_every=100)).fit()
    assert summary["step"] == summary["total_steps"] == 20


def test_resume_keeps_the_run_length_and_says_so(tworoom, tmp_path, caplog):
    # the cosine schedule depends on the run's length, so an exact resume cannot change it
    Trainer(_cfg(tworoom, tmp_path / "run", steps=6, save_every=3, val_every=100)).fit(stop_at=3)
    with caplog.at_level("WARNING"):
        resumed = Trainer(_cfg(tworoom, tmp_path / "run", steps=20, save_every=3, val_every=100, resume=True))
    assert "--steps 20 ignored" in caplog.text and "(--steps 6)" in caplog.text, caplog.text
    assert resumed.fit()["step"] == 6
    assert json.loads((tmp_path / "run" / "config.json").read_text())["config"]["steps"] == 6


def test_resume_keeps_the_runs_windows_whatever_the_flags_say(tworoom, tmp_path, caplog):
    kw = dict(steps=6, save_every=3, val_every=100, window_stride=2)
    full = Trainer(_cfg(tworoom, tmp_path / "full", **kw))
    full.fit()
    Trainer(_cfg(tworoom, tmp_path / "part", **kw)).fit(stop_at=3)
    with caplog.at_level("WARNING"):
        resumed = Trainer(_cfg(tworoom, tmp_path / "part", resume=True, **{**kw, "window_stride": 1, "num_frames": 4}))
    assert "keeping the run's num_frames=3, window_stride=2" in caplog.text, caplog.text
    assert (resumed.train_data.T, len(resumed.train_data)) == (full.train_data.T, len(full.train_data))
    resumed.fit()
    assert all(abs(resumed.losses[s] - full.losses[s]) <= 1e-6 for s in range(4, 7))


def test_nan_stops_with_the_step_and_keeps_the_last_checkpoint(tworoom, tmp_path):
    trainer = Trainer(_cfg(tworoom, tmp_path / "run", steps=10, save_every=3, val_every=100))
    gather = trainer.train_data.gather

    def poisoned(idx):
        batch = gather(idx)
        if trainer.step >= 4:  # the 5th step gets NaN actions
            batch["actions"][:] = np.nan
        return batch

    trainer.train_data.gather = poisoned
    with pytest.raises(TrainingError, match="step 5") as err:
        trainer.fit()
    assert "step 3" in str(err.value)  # where the intact checkpoint is
    tensors, meta = ckpt.load(tmp_path / "run" / "last.safetensors")
    assert meta["step"] == 3
    assert all(torch.isfinite(v).all() for k, v in tensors.items() if v.is_floating_point())
    from worldjepa.agent import load_checkpoint

    model, _ = load_checkpoint(tmp_path / "run")  # model.safetensors too
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_resume_with_data_of_another_frame_size_is_refused(tworoom, tmp_path):
    Trainer(_cfg(tworoom, tmp_path / "run", steps=2, val_every=100)).fit()
    other = tmp_path / "small.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(other), episodes=10, steps=12, size=16), progress=False)
    with pytest.raises(CheckpointError, match="32x32 frames.*16x16"):
        Trainer(_cfg(str(other), tmp_path / "run", resume=True, steps=4))
    with pytest.raises(WorldJepaError, match="already holds a run"):
        Trainer(_cfg(tworoom, tmp_path / "run", steps=4))


def test_cli_train_then_info(tworoom, tmp_path, cli):
    help_ = cli("train", "--help", check=True).stdout
    for flag in ("--minutes", "--steps", "--resume", "--latent-dim", "--regularizer", "--small", "--device"):
        assert flag in help_
    run = tmp_path / "run"
    proc = cli("train", "--data", tworoom, "--out", str(run), "--small", "--steps", "20", "--no-progress",
               "--threads", "1", "model.latent_dim=12", check=True)
    assert "val horizon 1" in proc.stdout
    info = json.loads(cli("info", str(run), "--json", check=True).stdout)
    assert info["step"] == 20 and info["model"]["latent_dim"] == 12 and info["env_id"] == "worldjepa/TwoRoom-v0"
    again = cli("train", "--data", tworoom, "--out", str(run), "--small", "--steps", "20")
    assert again.returncode == 2 and "--resume" in again.stderr
    gif = tmp_path / "plan.gif"
    out = cli("plan", "--run", str(run), "--data", tworoom, "--goal-offset", "6", "--budget", "4", "--samples", "16",
              "--iterations", "2", "--gif", str(gif), "--threads", "1", "--nn-frames", "100", "--json", check=True)
    res = json.loads(out.stdout)
    assert 1 <= res["steps"] <= 4 and isinstance(res["success"], bool) and res["distance"] >= 0
    from PIL import Image

    with Image.open(gif) as im:  # observation | imagined | goal, one frame per step + the final one
        assert im.n_frames == res["steps"] + 1 and im.size[0] > 2.5 * (im.size[1] - 20)
    text = cli("plan", "--run", str(run), "--data", tworoom, "--goal-offset", "6", "--budget", "4", "--samples", "16",
               "--iterations", "2", "--threads", "1", check=True).stdout
    shown = re.search(r"final distance ([^;]+);", text).group(1)  # 4 significant digits, not float repr's 17
    assert abs(float(shown) - res["distance"]) <= 1e-3 * max(1.0, res["distance"]) and len(shown) <= 9


def test_proprioception_trains_plans_and_is_checked(tmp_path):
    """PointMaze's velocity as proprioceptive input: train, save, reload, plan, evaluate."""
    from worldjepa.agent import Agent, load_checkpoint
    from worldjepa.eval.protocol import EvalConfig, run_protocol

    data = tmp_path / "pm.h5"
    collect(CollectConfig(env="worldjepa/PointMaze-UMaze-v0", out=str(data), episodes=30, steps=30, size=32),
            progress=False)
    model_kw = {**SMALL["model"], "proprio": "state[2:4]", "proprio_emb": 4}
    trainer = Trainer(_cfg(str(data), tmp_path / "run", steps=20, model=model_kw))
    m = trainer.model
    assert m.proprio_dim == 2 and m.latent_dim == m.visual_dim + 4
    vel = trainer.train_data.extras_arrays()["state"][:, 2:4]
    torch.testing.assert_close(m.proprio_enc.mean, torch.as_tensor(vel.mean(0), dtype=torch.float32))
    summary = trainer.fit()
    assert np.isfinite(summary["val/pred_over_copy"])
    model, meta = load_checkpoint(tmp_path / "run")
    assert meta["model"]["proprio_dim"] == 2
    torch.testing.assert_close(model.proprio_enc.std, m.proprio_enc.std)  # the statistics travel with the weights
    frame = np.zeros((32, 32, 3), np.uint8)
    z1 = model.encode(frame[None], np.array([[0.0, 0.0]], np.float32))
    z2 = model.encode(frame[None], np.array([[1.0, -1.0]], np.float32))
    assert torch.equal(z1[:, :model.visual_dim], z2[:, :model.visual_dim])  # the image part ignores it
    assert not torch.equal(z1, z2)
    with pytest.raises(WorldJepaError, match="proprioception"):
        model.encode(frame[None])
    agent = Agent.load(tmp_path / "run", samples=16, iterations=2, elites=4)
    with pytest.raises(WorldJepaError, match="'state'"):
        agent.reset(frame)  # no goal values
    agent.reset(frame, goal_state=np.array([1.5, 1.5, 0.0, 0.0]))
    with pytest.raises(WorldJepaError, match="'state'"):
        agent.act(frame)
    assert agent.act(frame, state=np.array([1.5, 1.5, 0.1, 0.0])).shape == (2,)
    # proprio_weight=0: the goal's proprioceptive values no longer change the plan (weight 1: they do)
    first = {}
    for w in (0, 1):
        for goal_vel in ((0.0, 0.0), (3.0, -3.0)):
            agent = Agent.load(tmp_path / "run", samples=16, iterations=2, elites=4, proprio_weight=w)
            agent.reset(frame, goal_state=np.array([1.5, 1.5, *goal_vel]))
            first[w, goal_vel] = agent.act(frame, state=np.array([1.5, 1.5, 0.1, 0.0]))
    np.testing.assert_array_equal(first[0, (0.0, 0.0)], first[0, (3.0, -3.0)])
    assert not np.array_equal(first[1, (0.0, 0.0)], first[1, (3.0, -3.0)])
    with pytest.raises(WorldJepaError, match="proprio_weight"):
        Agent.load(tmp_path / "run", proprio_weight=-1)
    res = run_protocol(EvalConfig(data=str(data), policy=str(tmp_path / "run"), episodes=2, budget=5,
                                  agent="samples=16 iterations=2 elites=4"), progress=False)
    assert res["summary"]["episodes"] == 2
    with pytest.raises(WorldJepaError, match="no extra 'info'"):
        Trainer(_cfg(str(data), tmp_path / "bad", steps=2, model={**model_kw, "proprio": "info[0:2]"}))
    with pytest.raises(WorldJepaError, match="selects nothing"):
        Trainer(_cfg(str(data), tmp_path / "bad2", steps=2, model={**model_kw, "proprio": "state[9:12]"}))


def test_tensorboard_only_when_asked_and_a_clear_error_without_the_package(tworoom, tmp_path, monkeypatch):
    Trainer(_cfg(tworoom, tmp_path / "off", steps=2, val_every=2)).fit()
    assert (tmp_path / "off" / "metrics.jsonl").is_file() and not (tmp_path / "off" / "tb").exists()
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'worldjepa\[tensorboard\]'"):
        Trainer(_cfg(tworoom, tmp_path / "missing", steps=2, tensorboard=True))
    assert not (tmp_path / "missing").exists()  # refused before anything was written


def test_tensorboard_scalars_with_the_flag(tworoom, tmp_path):
    """With --tensorboard, the same metrics as metrics.jsonl land in RUN_DIR/tb."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    Trainer(_cfg(tworoom, tmp_path / "run", steps=10, val_every=10, log_every=5, tensorboard=True)).fit()
    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/lr", "val/pred_over_copy"} <= tags, tags
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [r["train/loss"] for r in rows if "train/loss" in r]
    assert [round(e.value, 5) for e in acc.Scalars("train/loss")] == [round(v, 5) for v in logged]


def test_proprio_spec_is_checked_against_the_dataset_shapes():
    from types import SimpleNamespace

    from worldjepa.training.trainer import _proprio_dim

    ds = SimpleNamespace(path="d.h5", extras=["state", "info/flag"], shapes={"state": (4,), "info/flag": ()})
    assert _proprio_dim("state", ds) == 4 and _proprio_dim("state[2:4]", ds) == 2 and _proprio_dim("state[-1:]", ds) == 1
    with pytest.raises(WorldJepaError, match="one vector per frame"):
        _proprio_dim("info/flag", ds)
    with pytest.raises(WorldJepaError, match="no extra 'obs'"):
        _proprio_dim("obs", ds)


def test_encoder_from_a_pretrain_run_frozen_or_finetuned_and_resumed(tworoom, tmp_path):
    from worldjepa.training import pretrain as P

    pcfg = P.PretrainConfig(data=tworoom, out=str(tmp_path / "pre"), steps=3, batch_size=16,
                            encoder=EncoderConfig(dim=48, channels=(8, 8, 16)), projector_hidden=32, projector_dim=8,
                            sigreg_slices=32, log_every=1, probe_every=100, save_every=100, eval_frames=0,
                            progress=False)
    P.pretrain(pcfg)
    pre, _ = P.load_encoder_model(tmp_path / "pre")
    want = {k: v.clone() for k, v in pre.encoder.state_dict().items()}
    kw = dict(steps=6, save_every=100, val_every=100, encoder_init=str(tmp_path / "pre"))
    frozen = Trainer(_cfg(tworoom, tmp_path / "frozen", model={**SMALL["model"], "freeze_encoder": True}, **kw))
    # the pretrain run's architecture replaces the encoder flags (SMALL's channels are 8,16,16,32)
    assert frozen.model_cfg.encoder.channels == (8, 8, 16) and frozen.model_cfg.encoder.dim == 48
    for k, v in frozen.model.encoder.state_dict().items():
        assert torch.equal(v, want[k]), k  # starts from the pretrained weights
    # a frozen encoder's outputs are computed once: batches carry them instead of frames
    data = frozen.train_data
    cached = data.sample(8, np.random.default_rng(1))
    assert "frames" not in cached and cached["features"].shape == (8, 3, 48)
    feats, data._features = data._features, None
    raw = data.sample(8, np.random.default_rng(1))
    data._features = feats
    with torch.no_grad():
        frozen.model.eval()
        assert torch.allclose(frozen.model.embed_features(cached["features"]), frozen.model.encode(raw["frames"]),
                              atol=1e-5)
    before = {k: v.clone() for k, v in frozen.model.state_dict().items()}
    frozen.fit()
    after = frozen.model.state_dict()
    assert all(torch.equal(after[k], want[k[len("encoder."):]]) for k in after if k.startswith("encoder."))
    assert any(not torch.equal(after[k], before[k]) for k in after if k.startswith("predictor."))
    tuned = Trainer(_cfg(tworoom, tmp_path / "tuned", **kw))
    tuned.fit()
    assert any(not torch.equal(v, want[k]) for k, v in tuned.model.encoder.state_dict().items())
    # a resumed frozen run stays frozen and matches the uninterrupted one
    part = Trainer(_cfg(tworoom, tmp_path / "part", model={**SMALL["model"], "freeze_encoder": True}, **kw))
    part.fit(stop_at=3)
    resumed = Trainer(_cfg(tworoom, tmp_path / "part", resume=True, **{**kw, "encoder_init": ""}))
    resumed.fit()
    assert all(abs(resumed.losses[s] - frozen.losses[s]) <= 1e-6 for s in range(4, 7))
    assert all(torch.equal(v, want[k]) for k, v in resumed.model.encoder.state_dict().items())


def test_window_stride_with_a_frozen_encoder_encodes_only_the_frames_windows_hold(tworoom, tmp_path):
    k = SMALL["model"]["frameskip"]
    model = {**SMALL["model"], "freeze_encoder": True}
    t = Trainer(_cfg(tworoom, tmp_path / "s", model=model, window_stride=k, steps=2, save_every=100, val_every=100))
    data = t.train_data
    assert len(data) < data.num_split_frames / k + len(data.episodes)  # one start in k
    encoded = np.flatnonzero(np.abs(data._features).sum(1) > 0)  # rows the frozen encoder saw
    np.testing.assert_array_equal(encoded, data.window_rows)
    assert len(encoded) < 0.7 * data.num_split_frames
    t.fit()
    assert np.isfinite(t.losses[2])
    with pytest.raises(ConfigError, match="window_stride"):
        _cfg(tworoom, tmp_path / "bad", window_stride=0)


def test_encoder_init_refuses_a_world_model_and_another_frame_size(tworoom, tmp_path):
    Trainer(_cfg(tworoom, tmp_path / "wm", steps=2, val_every=100)).fit()
    with pytest.raises(CheckpointError, match="not a `worldjepa pretrain` run"):
        Trainer(_cfg(tworoom, tmp_path / "x", encoder_init=str(tmp_path / "wm")))
    from worldjepa.training import pretrain as P

    small = tmp_path / "small.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(small), episodes=6, steps=12, size=16), progress=False)
    P.pretrain(P.PretrainConfig(data=str(small), out=str(tmp_path / "pre16"), steps=1, batch_size=8,
                                encoder=EncoderConfig(dim=16, channels=(8, 8)), projector_hidden=16, projector_dim=4,
                                sigreg_slices=16, probe_every=100, save_every=100, eval_frames=0, progress=False))
    with pytest.raises(CheckpointError, match="16x16 frames, the dataset's are 32x32"):
        Trainer(_cfg(tworoom, tmp_path / "y", encoder_init=str(tmp_path / "pre16")))


def test_freeze_encoder_is_a_boolean_flag():
    from worldjepa.cli import build_parser
    from worldjepa.cli.train import train_config_from_args

    parse = build_parser().parse_args
    cfg = train_config_from_args(parse(["train", "--data", "d.h5", "--encoder-init", "runs/enc", "--freeze-encoder"]))
    assert cfg.model.freeze_encoder is True and cfg.encoder_init == "runs/enc"
    assert train_config_from_args(parse(["train", "--data", "d.h5"])).model.freeze_encoder is False
    assert train_config_from_args(parse(["train", "--freeze-encoder", "--no-freeze-encoder"])).model.freeze_encoder is False


def test_encoder_init_takes_a_keypoint_cnn(tworoom, tmp_path):
    from worldjepa.agent import load_checkpoint
    from worldjepa.training import pretrain as P

    P.pretrain(P.PretrainConfig(data=tworoom, out=str(tmp_path / "kp"), steps=1, batch_size=8,
                                encoder=EncoderConfig(dim=24, channels=(8, 8, 16), keypoints=4), projector_hidden=16,
                                projector_dim=4, sigreg_slices=16, probe_every=100, save_every=100, eval_frames=0,
                                progress=False))
    pre, meta = P.load_encoder_model(tmp_path / "kp")
    assert meta["model"]["encoder"]["keypoints"] == 4 and pre.encoder.heatmaps.out_channels == 4
    trainer = Trainer(_cfg(tworoom, tmp_path / "wm", steps=1, val_every=100, encoder_init=str(tmp_path / "kp"),
                           model={**SMALL["model"], "freeze_encoder": True}))
    assert trainer.model_cfg.encoder.keypoints == 4
    trainer.fit()
    model, _ = load_checkpoint(tmp_path / "wm")  # the checkpoint rebuilds the keypoint encoder
    assert all(torch.equal(v, pre.encoder.state_dict()[k]) for k, v in model.encoder.state_dict().items())
    with pytest.raises(ConfigError, match="keypoints"):
        P.PretrainConfig(data=tworoom, encoder=EncoderConfig(kind="vit_tiny", keypoints=2))
    with pytest.raises(ConfigError, match="keypoints"):
        from_dict(TrainConfig, {"model": {"encoder": "vit_tiny", "keypoints": 2}})  # the old flat names too


def test_encoder_init_takes_a_vit_tiny_with_its_patch_size(tworoom, tmp_path):
    from worldjepa.training import pretrain as P

    P.pretrain(P.PretrainConfig(data=tworoom, out=str(tmp_path / "vit"), encoder=EncoderConfig(kind="vit_tiny", dim=32),
                                steps=1, batch_size=4, projector_hidden=16, projector_dim=4, sigreg_slices=16,
                                probe_every=100, save_every=100, eval_frames=0, progress=False))
    pre, _ = P.load_encoder_model(tmp_path / "vit")
    trainer = Trainer(_cfg(tworoom, tmp_path / "wm", steps=1, val_every=100, encoder_init=str(tmp_path / "vit"),
                           model={**SMALL["model"], "freeze_encoder": True}))
    assert trainer.model_cfg.encoder.kind == "vit_tiny" and trainer.model_cfg.encoder.dim == 32
    assert trainer.model_cfg.encoder.patch == pre.encoder.patch_embed.kernel_size[0]
    trainer.fit()
    assert all(torch.equal(v, pre.encoder.state_dict()[k]) for k, v in trainer.model.encoder.state_dict().items())
