"""Inputs are never outputs: every command refuses, before any work, an output that is an input,
a link, a folder or a file of another kind, and reports an output folder it cannot write in."""

import os

import pytest

from worldjepa import paths
from worldjepa.errors import ConfigError
from worldjepa.paths import check_outputs, check_run_folder, file_kind


def test_kinds_of_files(tmp_path):
    for name, data, kind in [("a.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 8, "hdf5"), ("a.gif", b"GIF89a....", "gif"),
                             ("a.db", b"SQLite format 3\x00...", "sqlite"), ("a.json", b'  {"a": 1}', "json"),
                             ("e", b"", "empty"), ("x", b"hello", "other"), ("p.pt", b"PK\x03\x04zip", "zip")]:
        (tmp_path / name).write_bytes(data)
        assert file_kind(tmp_path / name) == kind, name


def test_an_output_that_is_an_input_through_any_path_is_refused(tmp_path):
    data = tmp_path / "base.h5"
    data.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 8)
    (tmp_path / "sub").mkdir()
    os.link(data, tmp_path / "sub" / "hard.h5")
    for out in (data, tmp_path / "sub" / ".." / "base.h5", tmp_path / "sub" / "hard.h5"):
        with pytest.raises(ConfigError, match="is the input given as --data"):
            check_outputs({"--json": (str(out), ("json",))}, {"--data": str(data)})
    assert data.read_bytes().startswith(b"\x89HDF")


def test_an_output_of_another_kind_a_link_a_folder_or_named_twice_is_refused(tmp_path):
    ckpt = tmp_path / "model.safetensors"
    ckpt.write_bytes((8).to_bytes(8, "little") + b'{"a": 1}')
    with pytest.raises(ConfigError, match="is a safetensors file, not json"):
        check_outputs({"--json": (str(ckpt), ("json",))}, {})
    (tmp_path / "link.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ConfigError, match="symbolic link"):
        check_outputs({"--json": (str(tmp_path / "link.json"), ("json",))}, {})
    (tmp_path / "dir.gif").mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        check_outputs({"--gif": (str(tmp_path / "dir.gif"), ("gif",))}, {})
    with pytest.raises(ConfigError, match="also the output of --json"):
        check_outputs({"--json": (str(tmp_path / "r"), ("json",)), "--gif": (str(tmp_path / "r"), ("gif",))}, {})
    (tmp_path / "old.json").write_text("{}")  # an output of its own kind is replaced
    check_outputs({"--json": (str(tmp_path / "old.json"), ("json",))}, {})


def test_a_missing_output_folder_is_made_and_an_unwritable_one_refused_before_the_work(tmp_path, monkeypatch):
    check_outputs({"--json": (str(tmp_path / "new" / "deep" / "r.json"), ("json",))}, {})
    assert (tmp_path / "new" / "deep").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        check_outputs({"--json": (str(tmp_path / "file" / "r.json"), ("json",))}, {})
    monkeypatch.setattr(paths.os, "access", lambda p, mode: False)  # root may write anywhere: simulate
    with pytest.raises(ConfigError, match="cannot write in .*permission denied"):
        check_outputs({"--gif": (str(tmp_path / "r.gif"), ("gif",))}, {})


def test_a_new_run_refuses_a_folder_holding_a_model_alone_or_its_own_inputs(tmp_path):
    run = tmp_path / "enc"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"already holds a run \(model.safetensors\)"):
        check_run_folder(run, resume=False, inputs={})
    check_run_folder(run, resume=True, inputs={})
    with pytest.raises(ConfigError, match="the input --encoder-init .* would be overwritten"):
        check_run_folder(tmp_path / "new", resume=False, inputs={"--encoder-init": str(tmp_path / "new")})
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        check_run_folder(tmp_path / "afile", resume=False, inputs={})
    (tmp_path / "linked").symlink_to(run)
    with pytest.raises(ConfigError, match="symbolic link"):
        check_run_folder(tmp_path / "linked", resume=True, inputs={})


@pytest.fixture(scope="module")
def made(small_data_and_run):
    return small_data_and_run


@pytest.mark.parametrize("args,why", [
    (["eval", "--policy", "random", "--json", "{data}"], "is the input given as --data"),
    (["eval", "--policy", "random", "--gif", "{data}"], "is the input given as --data"),
    (["eval", "--policy", "{run}", "--json", "{run}/model.safetensors"], "is a safetensors file, not json"),
    (["plan", "--run", "{run}", "--gif", "{data}"], "is the input given as --data"),
    (["plan", "--run", "{run}", "--gif", "{run}/last.safetensors"], "is a safetensors file, not gif"),
    (["memory", "build", "--run", "{run}", "--out", "{data}", "--overwrite"], "is the input given as --data"),
    (["collect", "--out", "{run}/config.json", "--append"], "is a json file, not hdf5"),
])
def test_commands_refuse_to_write_over_their_inputs_before_any_work(made, cli, args, why):
    data, run = made
    files = (data, run / "model.safetensors", run / "last.safetensors", run / "config.json")
    before = {p: p.read_bytes() for p in files}
    argv = [a.format(data=data, run=run) for a in args]
    if argv[0] != "collect":
        argv += ["--data", str(data)]
    proc = cli(*argv, "--no-progress") if argv[0] in ("eval", "collect") else cli(*argv)
    assert proc.returncode == 2 and why in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert all(p.read_bytes() == b for p, b in before.items())


def test_train_over_a_folder_that_holds_only_a_model_is_refused(made, cli, tmp_path):
    data, run = made
    enc = tmp_path / "enc"
    enc.mkdir()
    model = (run / "model.safetensors").read_bytes()
    (enc / "model.safetensors").write_bytes(model)
    proc = cli("train", "--data", str(data), "--out", str(enc), "--small", "--steps", "2", "--no-progress")
    assert proc.returncode == 2 and "already holds a run (model.safetensors)" in proc.stderr
    assert (enc / "model.safetensors").read_bytes() == model and sorted(p.name for p in enc.iterdir()) == [
        "model.safetensors"]
