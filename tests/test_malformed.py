"""Every malformed input is refused cleanly: a one-line error and exit status 2, never an internal
error, a crash, a hang or a huge allocation - for datasets, checkpoints, configs and flags, through
the commands that read them. Plus seeded random byte mutations of a dataset and a checkpoint."""

import json
import shutil
import struct
import time

import h5py
import numpy as np
import pytest
import torch

from worldjepa.cli import main

BASE = ["--no-progress"]


@pytest.fixture(scope="module")
def made(small_data_and_run):
    return small_data_and_run


def refused(capsys, *argv, seconds=60):
    """Run the CLI in this process: exit 2, one line on stderr, no internal error, in time."""
    capsys.readouterr()
    t0 = time.perf_counter()
    code = main([str(a) for a in argv])
    took = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    lines = [line for line in err.splitlines() if not line.startswith("error: XDG_RUNTIME_DIR")]
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith(f"worldjepa {argv[0]}: error: "), err
    assert "internal error" not in err and "Traceback" not in err
    assert took < seconds, took
    return lines[0]


# ------------------------------------------------------------------------------------------ datasets
def _meta(f, **change):
    meta = json.loads(f.attrs["worldjepa"])
    f.attrs["worldjepa"] = json.dumps({**meta, **change})


def _replace(f, name, arr):
    del f[name]
    f.create_dataset(name, data=arr)


def _nan_state_with_matching_checksums(f):
    """A forged file: NaN in the states, the checksums recomputed to match."""
    from worldjepa.data.integrity import checksum

    state = f["extras/state"][:]
    state[14] = np.nan
    f["extras/state"][:] = state
    cols = json.loads(f["episodes/checksum"].attrs["columns"])
    s, L = int(f["episodes/start"][1]), int(f["episodes/length"][1])
    f["episodes/checksum"][1, cols.index("extras/state")] = checksum(state[s:s + L])


DATASET_CORRUPTIONS = {
    "missing frames": lambda f: f.__delitem__("frames"),
    "missing episode starts": lambda f: f.__delitem__("episodes/start"),
    "float frames": lambda f: _replace(f, "frames", f["frames"][:].astype(np.float32)),
    "frames of another size": lambda f: _replace(f, "frames", f["frames"][:, :16, :16]),
    "actions of another width": lambda f: _replace(f, "actions", np.zeros((f["actions"].shape[0], 3), np.float32)),
    "negative start": lambda f: f["episodes/start"].__setitem__(1, -5),
    "overlapping episodes": lambda f: f["episodes/start"].__setitem__(2, int(f["episodes/start"][2]) - 3),
    "one-frame episode": lambda f: f["episodes/length"].__setitem__(0, 1),
    "torn index": lambda f: f["episodes/seed"].resize(5, axis=0),
    "forged huge index": lambda f: f["episodes/seed"].resize(10**13, axis=0),
    "negative seed": lambda f: f["episodes/seed"].__setitem__(3, -1),
    "NaN in states": lambda f: f["extras/state"].__setitem__(14, [np.nan, 0.0]),
    "NaN in states, checksums forged": _nan_state_with_matching_checksums,
    "inf in actions": lambda f: f["actions"].__setitem__(3, [np.inf, 0.0]),
    "changed actions": lambda f: f["actions"].__setitem__(3, [0.125, -0.5]),
    "states of another length": lambda f: _replace(f, "extras/state", f["extras/state"][:-2]),
    "checksum table of another shape": lambda f: _replace(f, "episodes/checksum", f["episodes/checksum"][:, :2]),
    "metadata not JSON": lambda f: f.attrs.__setitem__("worldjepa", "{not json"),
    "metadata a list": lambda f: f.attrs.__setitem__("worldjepa", "[1, 2]"),
    "metadata missing": lambda f: f.attrs.__delitem__("worldjepa"),
    "no env id": lambda f: _meta(f, env_id=None),
    "frame size a string": lambda f: _meta(f, frame_size="32"),
    "huge frame size": lambda f: _meta(f, frame_size=10**9),
    "action dim 0": lambda f: _meta(f, action_space={"kind": "box", "shape": [0], "dim": 0, "low": [], "high": []}),
    "newer format": lambda f: _meta(f, format_version=99),
}


@pytest.fixture(scope="module")
def bad_datasets(made, tmp_path_factory):
    data, _ = made
    root = tmp_path_factory.mktemp("bad_data")
    out = {}
    raw = data.read_bytes()
    for name, data_bytes in (("truncated", raw[: len(raw) // 2]), ("empty", b""), ("junk", b"not hdf5 " * 100)):
        (root / f"{name}.h5").write_bytes(data_bytes)
        out[name] = root / f"{name}.h5"
    for i, (name, corrupt) in enumerate(DATASET_CORRUPTIONS.items()):
        p = root / f"c{i}.h5"
        shutil.copyfile(data, p)
        with h5py.File(p, "r+") as f:
            corrupt(f)
        out[name] = p
    return out


@pytest.mark.parametrize("command", ["info", "train", "pretrain", "eval", "plan"])
def test_malformed_datasets_are_refused_by_every_command(made, bad_datasets, capsys, tmp_path, command):
    _, run = made
    for name, path in bad_datasets.items():
        argv = {"info": ["info", path, "--verify"],
                "train": ["train", "--data", path, "--out", tmp_path / "t", "--small", "--steps", "1", *BASE],
                "pretrain": ["pretrain", "--data", path, "--out", tmp_path / "p", "--small", "--steps", "1", *BASE],
                "eval": ["eval", "--data", path, "--policy", "random", "--episodes", "1", "--goal-offset", "2",
                         "--budget", "1", *BASE],
                "plan": ["plan", "--run", run, "--data", path, "--goal-offset", "2", "--budget", "1"]}[command]
        line = refused(capsys, *argv)
        assert path.name in line, (name, line)  # refused for the dataset, naming it
        assert not any((tmp_path / d / "model.safetensors").exists() for d in ("t", "p"))


# --------------------------------------------------------------------------------------- checkpoints
def _raw(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]), data[8 + n:]


def _write_raw(path, header, body):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + body)


def _with_meta(path, **change):
    header, body = _raw(path)
    meta = json.loads(header["__metadata__"]["worldjepa"])
    header["__metadata__"]["worldjepa"] = json.dumps({**meta, **change})
    _write_raw(path, header, body)


def _with_model(path, **change):
    header, _ = _raw(path)
    meta = json.loads(header["__metadata__"]["worldjepa"])
    _with_meta(path, model={**meta["model"], **change})


def _tensors(path, edit):
    from safetensors.torch import load_file, save_file

    header, _ = _raw(path)
    tensors = load_file(str(path))
    edit(tensors)
    save_file(tensors, str(path), metadata=header["__metadata__"])


def _header_edit(path, edit):
    header, body = _raw(path)
    edit(header)
    _write_raw(path, header, body)


CHECKPOINT_CORRUPTIONS = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "huge header length": lambda p: p.write_bytes(struct.pack("<Q", 2**40) + p.read_bytes()[8:]),
    "header not JSON": lambda p: p.write_bytes(p.read_bytes()[:9] + b"!!" + p.read_bytes()[11:]),
    "header a list": lambda p: _write_raw(p, [1, 2, 3], b""),
    "no worldjepa metadata": lambda p: _header_edit(p, lambda h: h.__setitem__("__metadata__", {})),
    "metadata not JSON": lambda p: _header_edit(p, lambda h: h["__metadata__"].__setitem__("worldjepa", "{oops")),
    "metadata a list": lambda p: _header_edit(p, lambda h: h["__metadata__"].__setitem__("worldjepa", "[1]")),
    "offsets past the end": lambda p: _header_edit(p, lambda h: [e.__setitem__("data_offsets", [0, 10**12])
                                                                for k, e in h.items() if k != "__metadata__"][:1]),
    "unknown dtype": lambda p: _header_edit(p, lambda h: [e.__setitem__("dtype", "Q9")
                                                         for k, e in h.items() if k != "__metadata__"]),
    "a 10^9-wide layer": lambda p: _with_model(p, latent_dim=10**9, projector_hidden=10**9),
    "model config of the wrong type": lambda p: _with_model(p, predictor_hidden="wide"),
    "no model config": lambda p: _with_meta(p, model=None),
    "missing tensor": lambda p: _tensors(p, lambda t: t.pop(sorted(t)[0])),
    "extra tensor": lambda p: _tensors(p, lambda t: t.__setitem__("model/extra.weight", torch.zeros(3))),
    "wrong-shape tensor": lambda p: _tensors(p, lambda t: t.__setitem__(sorted(t)[-1], torch.zeros(2, 2))),
    "a pickle": lambda p: torch.save({"w": torch.zeros(2)}, p),
    "an encoder, not a world model": lambda p: _with_meta(p, kind="lejepa"),
}


@pytest.fixture(scope="module")
def bad_runs(made, tmp_path_factory):
    _, run = made
    root = tmp_path_factory.mktemp("bad_runs")
    out = {}
    for i, (name, corrupt) in enumerate(CHECKPOINT_CORRUPTIONS.items()):
        d = root / f"r{i}"
        d.mkdir()
        shutil.copyfile(run / "model.safetensors", d / "model.safetensors")
        corrupt(d / "model.safetensors")
        out[name] = d
    return out


@pytest.mark.parametrize("command", ["info", "plan", "eval"])
def test_malformed_checkpoints_are_refused_before_anything_is_allocated(made, bad_runs, capsys, command):
    import resource

    data, _ = made
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB
    for name, run in bad_runs.items():
        argv = {"info": ["info", run, "--verify"],
                "plan": ["plan", "--run", run, "--data", data, "--goal-offset", "2", "--budget", "1"],
                "eval": ["eval", "--data", data, "--policy", run, "--episodes", "1", "--goal-offset", "2",
                         "--budget", "1", *BASE]}[command]
        line = refused(capsys, *argv, seconds=30)
        assert str(run) in line or "model.safetensors" in line, (name, line)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 2 * 2**20  # < 2 GB more at the peak


# ------------------------------------------------------------------------------------- configs, flags
CONFIGS = {
    "billion laughs": "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi")),
    "deep nesting": "[" * 50_000 + "]" * 50_000,
    "a list": "- 1\n- 2\n",
    "binary junk": "\udcff\udcfe\x00\x01",
    "unknown key": "episodez: 3\n",
    "wrong type": "episodes: many\n",
    "negative": "episodes: -1\n",
    "seed 2^32": f"seed: {2**32}\n",
    "too big": "# " + "x" * (2**20 + 10) + "\n",
}


def test_malformed_configs_are_refused_quickly(tmp_path, capsys):
    for name, text in CONFIGS.items():
        p = tmp_path / f"{len(list(tmp_path.iterdir()))}.yaml"
        p.write_bytes(text.encode("utf-8", "surrogateescape"))
        line = refused(capsys, "collect", "--config", p, "--out", tmp_path / "d.h5", *BASE, seconds=5)
        assert str(p) in line or name in ("unknown key", "wrong type", "negative", "seed 2^32"), (name, line)
    assert not (tmp_path / "d.h5").exists()


@pytest.mark.parametrize("argv,name", [
    (["collect", "--seed", str(2**32)], "seed"), (["collect", "--seed", "-1"], "seed"),
    (["collect", "--workers", "100000"], "workers"), (["collect", "--steps", "0"], "steps"),
    (["train", "--lr", "-1"], "lr"), (["train", "--lr", "nan"], "lr"),
    (["train", "--max-memory-mb", "nan"], "max_memory_mb"),
    (["train", "--weight-decay", "inf"], "weight_decay"), (["train", "--seed", str(2**32)], "seed"),
    (["pretrain", "--flip-p", "2"], "flip_p"), (["pretrain", "--probe-lr", "0"], "probe_lr"),
    (["eval", "--horizon", "0"], "horizon"), (["eval", "--replan-every", "0"], "replan_every"),
    (["eval", "--temperature", "0"], "temperature"), (["eval", "--momentum", "1"], "momentum"),
    (["eval", "--keep-elites", "1.5"], "keep_elites"), (["eval", "--shrink", "0.5"], "shrink"),
    (["eval", "--noise-decay", "0"], "noise_decay"), (["eval", "--act-steps", "-1"], "act_steps"),
    (["eval", "--samples", str(10**9)], "samples"), (["eval", "--elites", "50", "--samples", "10"], "elites"),
    (["eval", "--seed", "-1"], "seed"), (["eval", "--success-threshold", "nan"], "success_threshold"),
    (["plan", "--goal-offset", "-3"], "goal_offset"), (["plan", "--budget", "-2"], "budget"),
    (["plan", "--init-std", "0"], "init_std"), (["plan", "--gd-lr", "-1"], "lr"),
    (["memory", "build", "--seed", str(2**32)], "seed"), (["memory", "build", "--radius", "nan"], "radius"),
])
def test_out_of_range_flags_are_refused_naming_the_option(capsys, tmp_path, argv, name):
    extra = ["--data", str(tmp_path / "d.h5")] if argv[0] in ("eval", "plan") else []
    line = refused(capsys, *argv, *extra, seconds=5)
    assert name in line, line


# ------------------------------------------------------------------------------- random mutations
def test_random_byte_mutations_of_a_dataset_and_a_checkpoint_never_escape_as_internal_errors(made):
    """The fuzz of benchmarks/bench_reliability.py on a small budget: 200 mutated copies of each."""
    import sys

    from tests.conftest import ROOT

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_reliability import mutation_fuzz

    data, run = made
    result = mutation_fuzz([data, run / "model.safetensors"], 200, seed=0)
    for name, counts in result.items():
        assert counts["failure"] == 0, (name, counts["examples"][:3])
        assert counts["clean"] > 20, (name, counts)  # the mutations did reach what is checked
