"""The command line: help, the main flows, and one-line errors with exit status 2 on bad input."""

import json

import pytest




def one_line_error(proc, *needles):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("worldjepa")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def test_help_lists_commands_and_defaults(cli):
    out = cli("--help", check=True).stdout
    for cmd in ("envs", "collect", "info", "train", "plan", "eval"):
        assert cmd in out
    out = cli("collect", "--help", check=True).stdout
    assert "--episodes" in out and "(default: 100)" in out and "KEY=VALUE" in out


def test_collect_then_info(cli, tmp_path):
    out = tmp_path / "p.h5"
    proc = cli("collect", "--env", "Pendulum-v1", "--out", str(out), "--episodes", "2", "--steps", "5", "--size", "16", check=True)
    assert "episodes" in proc.stdout and "Pendulum-v1" in proc.stdout
    info = json.loads(cli("info", str(out), "--json", check=True).stdout)
    assert info["episodes"] == 2 and info["steps"] == 10 and info["shapes"]["frames"] == [12, 16, 16, 3]
    assert info["meta"]["config"]["steps"] == 5  # the artefact says how it was made


def test_config_file_flags_and_overrides(cli, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("env: Pendulum-v1\nepisodes: 5\nsteps: 4\nsize: 16\n")
    out = tmp_path / "p.h5"
    cli("collect", "--config", str(cfg), "--episodes", "3", f"out={out}", "steps=2", check=True)
    info = json.loads(cli("info", str(out), "--json", check=True).stdout)
    assert info["episodes"] == 3 and info["steps"] == 6


def test_unknown_env_id(cli, tmp_path):
    one_line_error(cli("collect", "--env", "Pendulum-v9", "--out", str(tmp_path / "x.h5")), "unknown environment id", "Pendulum-v1")
    assert not (tmp_path / "x.h5").exists()


def test_env_without_rgb_array(cli, tmp_path):
    mod = tmp_path / "noframes_env.py"
    mod.write_text(
        "import gymnasium as gym\n"
        "class NoFrames(gym.Env):\n"
        "    metadata = {'render_modes': ['human']}\n"
        "    observation_space = gym.spaces.Box(-1, 1, (2,))\n"
        "    action_space = gym.spaces.Box(-1, 1, (2,))\n"
        "    def __init__(self, render_mode=None): self.render_mode = render_mode\n"
        "gym.register('test/NoFrames-v0', entry_point=NoFrames)\n"
    )
    import os

    os.environ["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    try:
        proc = cli("collect", "--env", "test/NoFrames-v0", "--env-module", "noframes_env", "--out", str(tmp_path / "x.h5"))
    finally:
        os.environ["PYTHONPATH"] = os.environ["PYTHONPATH"].split(os.pathsep, 1)[1]
    one_line_error(proc, "cannot render rgb_array")
    # a file path works too, without touching PYTHONPATH
    proc = cli("collect", "--env", "test/NoFrames-v0", "--env-module", str(mod), "--out", str(tmp_path / "x.h5"))
    one_line_error(proc, "cannot render rgb_array")
    one_line_error(cli("collect", "--env-module", "no_such_module_xyz"), "no_such_module_xyz")
    one_line_error(cli("collect", "--env-module", str(tmp_path / "missing.py")), "missing.py")


def test_bad_files(cli, tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\x00" * 1000)
    one_line_error(cli("info", str(junk)), "junk.h5")
    one_line_error(cli("info", str(tmp_path / "missing.h5")), "missing.h5")
    torch = pytest.importorskip("torch")
    pt = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(3)}, pt)
    one_line_error(cli("info", str(pt)), "pickle")


def test_unknown_config_keys(cli, tmp_path):
    one_line_error(cli("collect", "--env", "Pendulum-v1", "episodez=3"), "episodez", "did you mean episodes")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bogus: 1\n")
    one_line_error(cli("collect", "--config", str(cfg)), "bogus")
    one_line_error(cli("collect", "--episodes", "-1"), "episodes")
    one_line_error(cli("collect", "--policy", "teleport", "--env", "Pendulum-v1", "--out", str(tmp_path / "y.h5")), "teleport")


@pytest.mark.parametrize("command", ["envs", "collect", "info", "pretrain", "train", "plan", "eval", "plot"])
def test_every_command_has_help(cli, command):
    proc = cli(command, "--help", check=True)
    assert "usage: worldjepa " + command in proc.stdout and "%%" not in proc.stdout


def test_envs_lists_builtins(cli):
    out = cli("envs", check=True).stdout
    for env_id in ("worldjepa/TwoRoom-v0", "worldjepa/PointMaze-UMaze-v0", "worldjepa/Reacher-v0", "worldjepa/PushT-v1"):
        assert env_id in out


def test_train_summary_warns_about_static_or_collapsed_embeddings():
    from worldjepa.cli.train import diagnose

    good = {"val/pred_over_copy": 0.1, "val/z_std": 0.98, "val/copy_mse_h1": 0.2, "val/copy_mse_h5": 1.0}
    assert diagnose(good) == []
    static = {**good, "val/pred_over_copy": 1.0, "val/copy_mse_h1": 0.011, "val/copy_mse_h5": 0.0065}
    msgs = diagnose(static)
    assert len(msgs) == 2 and "copying" in msgs[0] and "stays still" in msgs[1]
    assert any("collapsed" in m for m in diagnose({**good, "val/z_std": 0.001, "val/copy_mse_h5": 1e-7}))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("run")
    run_cli("collect", "--small", "--size", "32", "--out", str(root / "d.h5"), "--episodes", "12", "--steps", "40",
            "-q", check=True)
    run_cli("train", "--small", "--data", str(root / "d.h5"), "--out", str(root / "a"), "--steps", "4",
            "--val-every", "2", "--threads", "1", "--device", "cpu", "-q", check=True)
    return root


def test_info_shows_the_final_validation_metrics(cli, tiny_run):
    meta = json.loads((tiny_run / "a" / "config.json").read_text())
    proc = cli("info", str(tiny_run / "a"), check=True)
    shown = dict(line.split(None, 1) for line in proc.stdout.splitlines() if line.strip().startswith("val/"))
    assert set(shown) == set(meta["val"]) and "val/pred_over_copy" in shown
    assert float(shown["val/pred_over_copy"]) == pytest.approx(meta["val"]["val/pred_over_copy"], rel=1e-3)
    assert "finished  yes (4 of 4 steps)" in proc.stdout


def test_a_runs_config_json_is_a_valid_config(cli, tiny_run):
    from worldjepa.world_model import load_world_model, model_fingerprint

    cli("train", "--config", str(tiny_run / "a" / "config.json"), "--out", str(tiny_run / "b"), "-q", check=True)
    a, b = (json.loads((tiny_run / r / "config.json").read_text())["config"] for r in "ab")
    assert {k for k in a if a[k] != b[k]} == {"out"}
    assert model_fingerprint(load_world_model(tiny_run / "a")[0]) == model_fingerprint(load_world_model(tiny_run / "b")[0])
    bad = cli("eval", "--config", str(tiny_run / "a" / "config.json"), "--data", str(tiny_run / "d.h5"))
    assert bad.returncode == 2 and "config.json of a `worldjepa train` run" in bad.stderr


def test_info_describes_a_memory_file_too(cli, tmp_path):
    import sqlite3

    import numpy as np

    from worldjepa.memory import MemoryStore

    with MemoryStore.create(tmp_path / "mem.db", dim=8, fingerprint="ab12" * 4, meta={"env_id": "worldjepa/TwoRoom-v0"}) as m:
        m.add(np.ones((3, 8), np.float32), episode=0, step=[0, 1, 2])
    stats = json.loads(cli("info", str(tmp_path / "mem.db"), "--json", check=True).stdout)
    assert stats["entries"] == 3 and stats["dim"] == 8  # as `worldjepa memory stats` shows it
    assert "verified on opening" in cli("info", str(tmp_path / "mem.db"), "--verify", check=True).stdout
    sqlite3.connect(tmp_path / "other.db").execute("create table t(x)").connection.commit()
    one_line_error(cli("info", str(tmp_path / "other.db")), "not a worldjepa memory")
