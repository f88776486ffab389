"""The world model: encode / predict / rollout verbs, its loss, and exact rebuild from config."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from worldjepa.config import from_dict, to_dict
from worldjepa.configs import EncoderConfig
from worldjepa.errors import ConfigError, WorldJepaError
from worldjepa.world_model import ModelConfig, build_world_model

CFG = ModelConfig(encoder=EncoderConfig(channels=(4, 8, 8, 16), dim=32), latent_dim=8, projector_hidden=32,
                  predictor_hidden=32, sigreg_slices=32, frameskip=2, frame_size=16, action_dim=3)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny kernels: extra threads only wait on a shared CPU
    yield
    torch.set_num_threads(n)


def _batch(b=6, t=4, seed=0):
    rng = np.random.default_rng(seed)
    return {"frames": rng.integers(0, 256, (b, t, 16, 16, 3), dtype=np.uint8),
            "actions": rng.standard_normal((b, t, 6)).astype(np.float32)}


def _loss(m, batch):
    """The model's loss of a numpy batch of windows, given as tensors."""
    p = m.proprio_of(batch)
    return m.loss(torch.as_tensor(batch["actions"]), frames=torch.as_tensor(batch["frames"]),
                  proprio=None if p is None else torch.as_tensor(p))


def test_encode_accepts_uint8_hwc_and_float_chw_alike():
    torch.manual_seed(0)
    m = build_world_model(CFG).eval()
    frames = _batch()["frames"]  # (B, T, H, W, 3) uint8
    z = m.encode(frames)
    assert z.shape == (6, 4, 8)
    chw = torch.as_tensor(frames).permute(0, 1, 4, 2, 3).float() / 255  # (B, T, 3, H, W)
    torch.testing.assert_close(m.encode(chw), z)
    with pytest.raises(WorldJepaError, match="H, W, 3"):
        m.encode(frames[..., :1])


def test_rollout_of_one_step_equals_teacher_forced_prediction():
    torch.manual_seed(0)
    m = build_world_model(CFG).eval()
    b = _batch()
    with torch.no_grad():
        z = m.encode(b["frames"])  # (B, T, D)
        a = torch.as_tensor(b["actions"])
        tf = m.predict(z, a)  # (B, T, D)
        ro = m.rollout(z[:, :1], a[:, :0], a[:, None, :1])  # (B, 1, 1, D)
    torch.testing.assert_close(ro[:, 0, 0], tf[:, 0])


@pytest.mark.parametrize("reg", ["sigreg", "vicreg", "none"])
def test_loss_terms_and_gradients(reg):
    torch.manual_seed(0)
    m = build_world_model(replace(CFG, regularizer=reg))
    out = _loss(m, _batch())
    assert set(out) == {"loss", "pred", "rollout", "reg"}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in out.values())
    expected = out["pred"] + out["rollout"] + 0.1 * out["reg"]
    torch.testing.assert_close(out["loss"], expected)
    assert (out["reg"] == 0) == (reg == "none")
    out["loss"].backward()
    assert m.encoder.convs[0].weight.grad.abs().sum() > 0  # end to end: pixels get gradients


def test_inverse_dynamics_term_pldm_variant():
    torch.manual_seed(0)
    m = build_world_model(replace(CFG, regularizer="vicreg", inverse_weight=0.5))
    b = _batch()
    out = _loss(m, b)
    assert set(out) == {"loss", "pred", "rollout", "reg", "inverse"}
    torch.testing.assert_close(out["loss"], out["pred"] + out["rollout"] + 0.1 * out["reg"] + 0.5 * out["inverse"])
    # the term is the MSE of the head's action guess from consecutive embeddings
    with torch.no_grad():
        z = m.encode(b["frames"])
        guess = m.inverse(z[:, :-1], z[:, 1:])
    torch.testing.assert_close(out["inverse"].detach(),
                               torch.nn.functional.mse_loss(guess, torch.as_tensor(b["actions"])[:, :-1]))
    out["loss"].backward()
    assert m.inverse[0].weight.grad.abs().sum() > 0 and m.encoder.convs[0].weight.grad.abs().sum() > 0
    assert build_world_model(CFG).inverse is None  # off by default: no extra parameters
    with pytest.raises(ConfigError, match="inverse_weight"):
        ModelConfig(inverse_weight=-1)


def test_config_rebuilds_the_same_model():
    torch.manual_seed(0)
    m = build_world_model(CFG).eval()
    cfg2 = from_dict(ModelConfig, to_dict(CFG))  # as read back from a checkpoint's JSON
    m2 = build_world_model(cfg2).eval()
    m2.load_state_dict(m.state_dict())
    frames = _batch()["frames"]
    torch.testing.assert_close(m2.encode(frames), m.encode(frames), rtol=0, atol=0)


def test_bad_configs_are_clear():
    with pytest.raises(ConfigError, match="frame_size"):
        build_world_model(ModelConfig())
    with pytest.raises(ConfigError, match="transformer"):
        ModelConfig(preset="small")


def test_parse_proprio_specs():
    from worldjepa.world_model import parse_proprio

    assert parse_proprio("state[2:4]") == ("state", slice(2, 4))
    assert parse_proprio("obs") == ("obs", slice(None))
    assert parse_proprio("state[:2]") == ("state", slice(None, 2))
    for bad in ("state[2:", "2state", "state[a:b]", ""):
        with pytest.raises(ConfigError, match="proprio"):
            parse_proprio(bad)
    with pytest.raises(ConfigError, match="proprio"):
        ModelConfig(proprio="state[2")


def test_no_projector_latent_is_the_standardised_encoder_output_and_rebuilds():
    cfg = from_dict(ModelConfig, {**to_dict(CFG), "projector_layers": 0, "proprio": "state[0:2]", "proprio_dim": 2,
                                  "proprio_emb": 4})
    torch.manual_seed(0)
    m = build_world_model(cfg)
    assert m.visual_dim == cfg.encoder.dim and m.latent_dim == cfg.encoder.dim + 4  # latent_dim 8 does not apply
    batch = {**_batch(), "state": np.random.default_rng(1).standard_normal((6, 4, 2)).astype(np.float32)}
    m.train()
    _loss(m, batch)["loss"].backward()  # trains (the predictor and the proprio embedding learn) ...
    assert not list(m.projector.parameters())  # ... the projector has nothing to learn
    assert m.proprio_enc.linear.weight.grad is not None
    m.eval()
    m2 = build_world_model(from_dict(ModelConfig, to_dict(cfg))).eval()
    m2.load_state_dict(m.state_dict())  # the running statistics travel with the weights
    frames, p = batch["frames"][:, 0], batch["state"][:, 0]
    torch.testing.assert_close(m2.encode(frames, p), m.encode(frames, p), rtol=0, atol=0)
    with pytest.raises(ConfigError, match="projector_layers"):
        ModelConfig(projector_layers=-1)


def test_loss_takes_frames_or_features_and_equals_the_prediction_error():
    """The training terms are the shared prediction error; cached encoder features give the same loss."""
    from worldjepa.losses import prediction_error

    torch.manual_seed(0)
    m = build_world_model(replace(CFG, regularizer="none", rollout_weight=0.0)).eval()
    b = _batch()
    a = torch.as_tensor(b["actions"])
    with torch.no_grad():
        out = m.loss(a, frames=torch.as_tensor(b["frames"]))
        z = m.encode(b["frames"])
        want = prediction_error(m.predict(z[:, :-1], a[:, :-1]), z[:, 1:]).mean()
        feats = m.encoder(torch.as_tensor(b["frames"]).flatten(0, 1).permute(0, 3, 1, 2).float() / 255)
        cached = m.loss(a, features=feats.view(6, 4, -1))
    torch.testing.assert_close(out["pred"], want)
    torch.testing.assert_close(cached["loss"], out["loss"])
    with pytest.raises(WorldJepaError, match="frames or features"):
        m.loss(a)


def test_checkpoints_of_the_first_layout_still_load(tmp_path):
    """Library 0.1.0 wrote a flat model config (encoder_dim, channels, ...) and its proprioception
    weights under other names: both are read."""
    from worldjepa import checkpoint as ckpt
    from worldjepa.world_model import load_world_model

    cfg = replace(CFG, proprio="state[0:2]", proprio_dim=2, proprio_emb=4)
    torch.manual_seed(0)
    m = build_world_model(cfg).eval()
    m.proprio_enc.mean.fill_(0.5)
    old_names = {"proprio_enc.linear.weight": "proprio_enc.weight", "proprio_enc.linear.bias": "proprio_enc.bias",
                 "proprio_enc.mean": "proprio_mean", "proprio_enc.std": "proprio_std"}
    tensors = {f"model/{old_names.get(k, k)}": v for k, v in m.state_dict().items()}
    flat = {k: v for k, v in to_dict(cfg).items() if k != "encoder"}
    flat.update(encoder="cnn", encoder_dim=32, channels=[4, 8, 8, 16], keypoints=0, patch=8)
    ckpt.save(tmp_path / "old.safetensors", tensors, {"format": "worldjepa-checkpoint", "model": flat})
    loaded, _ = load_world_model(tmp_path / "old.safetensors")
    frames, p = _batch()["frames"][:, 0], np.ones((6, 2), np.float32)
    torch.testing.assert_close(loaded.encode(frames, p), m.encode(frames, p), rtol=0, atol=0)
    assert from_dict(ModelConfig, flat) == cfg
