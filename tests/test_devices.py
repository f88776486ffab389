"""Devices and precision: every command that runs a model takes --device (auto = CUDA when torch
sees one), and --precision bf16 runs training's and planning's forward passes under bfloat16
autocast (tested on the CPU, where torch's autocast supports bf16). The CUDA cases are marked
`cuda` (skipped without a GPU; benchmarks/device_check.sh runs them on a GPU machine)."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from tests.conftest import cuda_only, tiny_run
from worldjepa.cli import main
from worldjepa.config import from_dict
from worldjepa.configs import PRESETS, EncoderConfig, PretrainConfig, TrainConfig
from worldjepa.training.trainer import Trainer

SMALL = PRESETS["train"]["small"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny TwoRoom dataset and a world model trained 4 steps on it."""
    return tiny_run(tmp_path_factory.mktemp("devices"))


def _train_cfg(data, out, **kw):
    return from_dict(TrainConfig, {**SMALL, "data": str(data), "out": str(out), "progress": False,
                                   "device": "cpu", "val_windows": 8, **kw})


def _linear_output_dtypes(model: torch.nn.Module) -> tuple[set, list]:
    """The dtypes the model's Linear layers return while the hooks are on."""
    seen: set = set()
    hooks = [m.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
             for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return seen, hooks


@pytest.mark.parametrize("precision, dtype", [("float32", torch.float32), ("bf16", torch.bfloat16)])
def test_training_forward_runs_in_the_chosen_precision_and_the_weights_stay_float32(tiny, tmp_path, precision, dtype):
    trainer = Trainer(_train_cfg(tiny[0], tmp_path / "run", steps=3, precision=precision))
    seen, hooks = _linear_output_dtypes(trainer.model)
    metrics = trainer.train_step()
    for h in hooks:
        h.remove()
    assert seen == {dtype}
    assert np.isfinite(metrics["train/loss"]) and metrics["train/grad_norm"] > 0
    assert {p.dtype for p in trainer.model.parameters()} == {torch.float32}
    assert all(p.grad is None or p.grad.dtype == torch.float32 for p in trainer.model.parameters())


def test_pretraining_forward_runs_in_bf16(tiny, tmp_path):
    from worldjepa.training.pretrain import Pretrainer

    cfg = PretrainConfig(data=tiny[0], out=str(tmp_path / "enc"), steps=2, batch_size=8, projector_hidden=32,
                         sigreg_slices=16, eval_frames=0, progress=False, device="cpu", precision="bf16",
                         encoder=EncoderConfig(dim=32, channels=(8, 16)))
    run = Pretrainer(cfg)
    seen, hooks = _linear_output_dtypes(run.model.projector)  # the online probe's clean encoding runs after it
    metrics = run.train_step()
    for h in hooks:
        h.remove()
    assert seen == {torch.bfloat16} and np.isfinite(metrics["train/loss"])
    assert {p.dtype for p in run.model.parameters()} == {torch.float32}


def test_bf16_planning_imagines_in_bf16_and_ranks_float32_costs_close_to_float32_ones(tiny):
    from worldjepa.agent import Agent

    agents = {p: Agent.load(tiny[1], samples=16, iterations=2, device="cpu", precision=p) for p in ("float32", "bf16")}
    frame = np.zeros((32, 32, 3), np.uint8)
    frame[8:12, 8:12] = 255
    costs = {}
    acts = torch.rand(1, 16, agents["bf16"].horizon, agents["bf16"].k * 2) * 2 - 1  # (1, S, H, k*A)
    for p, agent in agents.items():
        agent.reset(np.full((32, 32, 3), 40, np.uint8))
        agent.observe(frame)
        cost = agent.latent_cost()
        seen, hooks = _linear_output_dtypes(agent.model.predictor)
        costs[p] = cost(acts)
        for h in hooks:
            h.remove()
        assert seen == {torch.bfloat16 if p == "bf16" else torch.float32}
        assert costs[p].dtype == torch.float32 and costs[p].shape == (1, 16)
    torch.testing.assert_close(costs["bf16"], costs["float32"], rtol=0.05, atol=1e-3)
    assert agents["bf16"].act(frame).shape == (2,)  # a whole plan in bf16


def test_unknown_precision_is_refused(tiny, tmp_path):
    from worldjepa.errors import ConfigError

    with pytest.raises(SystemExit) as e:  # argparse: a choice
        main(["train", "--data", tiny[0], "--out", str(tmp_path / "r"), "--precision", "fp8"])
    assert e.value.code == 2
    with pytest.raises(ConfigError, match="precision"):  # Python: the config
        from_dict(TrainConfig, {"precision": "fp8"})


def _commands(data: str, run: str, out) -> dict[str, list[str]]:
    """One tiny invocation of every command that runs a model."""
    return {
        "train": ["train", "--data", data, "--out", str(out / "train"), "--small", "--steps", "2", "--val-windows", "8",
                  "--no-progress"],
        "pretrain": ["pretrain", "--data", data, "--out", str(out / "pretrain"), "--steps", "2", "--batch-size", "8",
                     "--encoder-dim", "32", "--channels", "8,16", "--projector-hidden", "32", "--sigreg-slices", "16",
                     "--eval-frames", "50", "--no-progress"],
        "eval": ["eval", "--data", data, "--policy", run, "--episodes", "1", "--budget", "3", "--goal-offset", "5",
                 "--samples", "8", "--iterations", "1", "--no-progress"],
        "plan": ["plan", "--run", run, "--data", data, "--goal-offset", "5", "--budget", "3", "--samples", "8",
                 "--iterations", "1"],
        "memory": ["memory", "build", "--run", run, "--data", data, "--out", str(out / "mem.db"), "--subgoals", "5",
                   "--no-progress"],
        "physics": ["physics", "--run", run, "--pairs", "1", "--untrained", "1", "--plots", "0", "--kinds", "teleport",
                    "--out", str(out / "physics")],
        "probe": ["probe", "--run", run, "--data", data, "--max-frames", "40", "--mlp-steps", "2", "--no-random-init",
                  "--out", str(out / "probe")],
    }


@pytest.mark.parametrize("command", ["train", "pretrain", "eval", "plan", "memory", "physics", "probe"])
def test_every_model_command_takes_device_and_refuses_cuda_without_one(tiny, tmp_path, capsys, command):
    args = _commands(*tiny, tmp_path)[command]
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the cuda tests cover it")
    assert main([*args, "--device", "cuda"]) == 2
    assert "--device cuda, but torch sees no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / command).exists() and not (tmp_path / "mem.db").exists()  # refused before writing


@cuda_only
@pytest.mark.parametrize("command", ["train", "pretrain", "eval", "plan", "memory", "physics", "probe"])
def test_every_model_command_runs_on_cuda(tiny, tmp_path, command):
    assert main([*_commands(*tiny, tmp_path)[command], "--device", "cuda"]) == 0


@cuda_only
@pytest.mark.parametrize("precision", ["float32", "bf16"])
def test_training_on_cuda_matches_the_cpu_at_the_first_step(tiny, tmp_path, precision):
    losses = {}
    for device in ("cpu", "cuda"):
        trainer = Trainer(_train_cfg(tiny[0], tmp_path / device, steps=3, device=device, precision=precision))
        assert next(trainer.model.parameters()).device.type == device
        losses[device] = trainer.train_step()["train/pred"]  # SIGReg's directions differ between CPU and CUDA
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=0.05 if precision == "bf16" else 1e-3)


@cuda_only
def test_auto_picks_cuda_when_present(tiny, tmp_path):
    trainer = Trainer(replace(_train_cfg(tiny[0], tmp_path / "auto", steps=2), device="auto"))
    assert next(trainer.model.parameters()).device.type == "cuda"
    result = trainer.fit()
    assert np.isfinite(result["train/loss"])
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["config"]["device"] == "auto"
