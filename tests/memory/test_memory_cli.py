"""The memory from the command line and the Python API: build, query, stats, events, eval and plan with it."""

import hashlib
import json

import numpy as np
import pytest

from tests.conftest import run_cli as cli


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("mem")
    data, run, other, mem = root / "d.h5", root / "run", root / "other", root / "mem.db"
    cli("collect", "--env", "worldjepa/TwoRoom-v0", "--episodes", "24", "--steps", "40", "--size", "32", "--out",
        str(data), "--no-progress", check=True)
    for out, seed in ((run, 0), (other, 1)):
        cli("train", "--data", str(data), "--out", str(out), "--small", "--steps", "20", "--no-progress", "--threads",
            "1", "--device", "cpu", "--seed", str(seed), check=True)
    proc = cli("memory", "build", "--run", str(run), "--data", str(data), "--out", str(mem), "--no-progress",
               "--threads", "1", "--json", check=True)
    return root, data, run, other, mem, json.loads(proc.stdout)


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_build_remembers_every_train_frame_and_maps_them(built):
    root, data, run, other, mem, stats = built
    from worldjepa.data.dataset import Dataset

    with Dataset(data) as ds:
        frames = int(ds.lengths[ds.episode_ids("train")].sum())
    assert stats["entries"] == frames and stats["episodes"] == len(ds.episode_ids("train"))
    assert 1 < stats["landmarks"] < stats["entries"] and stats["edges"] > stats["landmarks"] / 2
    assert stats["radius"] > 0 and stats["events"] >= stats["episodes"]  # an event starts with every episode
    text = cli("memory", "stats", str(mem), check=True).stdout
    assert "entries" in text and "landmarks" in text
    assert "map.radius" in text and "meta.run" in text and "{" not in text  # nested values as dotted rows
    events = json.loads(cli("memory", "events", str(mem), "--json", "--limit", "0", check=True).stdout)
    assert len(events) == stats["events"] and sum(e["entries"] for e in events) == stats["entries"]


def test_a_strided_memory_calibrates_on_the_frames_it_kept(built, tmp_path):
    root, data, run, *_ = built  # every 2nd frame: no two entries 3 steps apart, 4 are
    proc = cli("memory", "build", "--run", str(run), "--data", str(data), "--out", str(tmp_path / "m.db"),
               "--stride", "2", "--no-progress", "--threads", "1", "--json", check=True)
    stats = json.loads(proc.stdout)
    assert stats["landmarks"] > 1 and stats["radius"] > 0
    short = cli("memory", "build", "--run", str(run), "--data", str(data), "--out", str(tmp_path / "n.db"),
                "--stride", "50", "--no-progress", "--threads", "1")  # one frame per 40-step episode
    assert short.returncode == 2 and "--radius" in short.stderr and "Traceback" not in short.stderr
    assert not (tmp_path / "n.db").exists()  # refused before the memory file was created


def test_query_says_where_and_when_a_frame_was_seen(built, tmp_path):
    root, data, run, other, mem, _ = built
    from PIL import Image

    from worldjepa.data.dataset import Dataset

    with Dataset(data) as ds:
        e = int(ds.episode_ids("train")[2])
        frame = ds.episode(e)["frames"][17]
    Image.fromarray(np.repeat(np.repeat(frame, 3, 0), 3, 1)).save(tmp_path / "q.png")  # any size
    hits = json.loads(cli("memory", "query", str(mem), "--frame", str(tmp_path / "q.png"), "-k", "3", "--json",
                          check=True).stdout)
    assert len(hits) == 3 and [h["distance"] for h in hits] == sorted(h["distance"] for h in hits)
    assert (hits[0]["episode"], hits[0]["step"]) == (e, 17) or hits[0]["distance"] < 0.05  # the very moment
    entries = json.loads(cli("memory", "stats", str(mem), "--json", check=True).stdout)["entries"]
    every = json.loads(cli("memory", "query", str(mem), "--frame", str(tmp_path / "q.png"), "-k", str(entries + 5),
                           "--json", check=True).stdout)  # more than it holds: all of them
    assert len(every) == entries and every[:3] == hits


def test_eval_and_plan_reason_over_the_memory_and_record_it(built, tmp_path):
    root, data, run, other, mem, _ = built
    res = tmp_path / "r.json"
    cli("eval", "--data", str(data), "--policy", str(run), "--far", "--episodes", "2", "--far-budget", "10",
        "--samples", "16", "--iterations", "2", "--memory", str(mem), "--json", str(res), "--no-progress", check=True)
    records = json.loads(res.read_text())["records"]
    assert all({"routed", "fallback", "route_nodes", "replans"} <= set(r["memory"]) for r in records)
    assert json.loads(res.read_text())["config"]["agent"]["memory"] == str(mem)
    # flat and with memory, two rows of one table on the same pairs: RUN[KEY=VALUE ...]
    both = f"{run},{run}[memory={mem} samples=16]"
    proc = cli("eval", "--data", str(data), "--policy", both, "--far", "--episodes", "2", "--far-budget", "6",
               "--samples", "8", "--iterations", "2", "--json", str(res), "--no-progress", check=True)
    assert f"{run}[memory={mem} samples=16]" in proc.stdout
    assert f"memory of {run}[memory={mem} samples=16]: " in proc.stdout and "planned flat (no route)" in proc.stdout
    two = json.loads(res.read_text())
    flat, routed = two[str(run)], two[f"{run}[memory={mem} samples=16]"]
    assert "memory" not in flat["records"][0] and "memory" in routed["records"][0]
    assert routed["config"]["agent"]["planner"]["samples"] == 16 and flat["config"]["agent"]["planner"]["samples"] == 8
    assert [r["goal_state"] for r in flat["records"]] == [r["goal_state"] for r in routed["records"]]
    gif = tmp_path / "p.gif"
    out = cli("plan", "--run", str(run), "--data", str(data), "--goal-offset", "6", "--budget", "4", "--samples", "16",
              "--iterations", "2", "--memory", str(mem), "--gif", str(gif), "--nn-frames", "50", "--json", check=True)
    assert "memory" in json.loads(out.stdout)
    from PIL import Image

    with Image.open(gif) as im:  # observation | imagined | subgoal | goal, under a title and captions (20 px)
        assert im.size[0] > 3.5 * (im.size[1] - 20)


def test_python_api_and_bad_memory_files(built, tmp_path):
    root, data, run, other, mem, _ = built
    import worldjepa
    from worldjepa.errors import WorldJepaError

    agent = worldjepa.Agent.load(run, planner="cem", memory=str(mem), samples=16, iterations=2)
    assert agent.router is not None and agent.router.map.size > 1
    before = sha(mem)
    with pytest.raises(WorldJepaError, match="fingerprint|another model"):
        worldjepa.Agent.load(other, memory=str(mem))  # a memory of another model's latent
    from worldjepa.world_model import load_world_model

    model, meta = load_world_model(run)
    with pytest.raises(WorldJepaError, match="is a memory of worldjepa/TwoRoom-v0 .*not of worldjepa/PointMaze"):
        worldjepa.Agent(model, {**meta, "env_id": "worldjepa/PointMaze-UMaze-v0"}, memory=str(mem))  # another env's
    assert sha(mem) == before
    bad = cli("eval", "--data", str(data), "--policy", str(other), "--far", "--episodes", "1", "--memory", str(mem))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and sha(mem) == before
    cut = tmp_path / "cut.db"
    cut.write_bytes(mem.read_bytes()[: len(mem.read_bytes()) // 2])
    for path in (cut, data):  # truncated; not a memory at all
        proc = cli("memory", "stats", str(path))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    again = cli("memory", "build", "--run", str(run), "--data", str(data), "--out", str(mem), "--no-progress")
    assert again.returncode == 2 and "--overwrite" in again.stderr and sha(mem) == before  # the flag, not the API's
    assert "overwrite=True" not in again.stderr
    neg = cli("memory", "events", str(mem), "--limit", "-1")
    assert neg.returncode == 2 and "--limit" in neg.stderr and not neg.stdout


def test_build_with_a_subgoal_model_keeps_it_and_the_agent_uses_it(built, tmp_path):
    root, data, run, *_ = built
    mem = tmp_path / "sub.db"
    proc = cli("memory", "build", "--run", str(run), "--data", str(data), "--out", str(mem), "--subgoals", "30",
               "--no-progress", "--threads", "1", "--json", check=True)
    fit = json.loads(proc.stdout)["subgoals"]
    assert fit["train_steps"] == 30 and fit["val_episodes"] >= 1 and fit["val_subgoal_error"] > 0
    stats = json.loads(cli("memory", "stats", str(mem), "--json", check=True).stdout)
    assert stats["subgoal_model"]["fit"] == fit and stats["subgoal_model"]["dim"] == stats["dim"]
    text = cli("memory", "build", "--run", str(run), "--data", str(data), "--out", str(mem), "--subgoals", "5",
               "--overwrite", "--no-progress", "--threads", "1", check=True).stdout
    assert "subgoal model: 5 steps" in text and "held-out episodes" in text
    assert "no better than a trivial guess" in text  # 5 steps teach it nothing: the build says so
    import worldjepa

    agent = worldjepa.Agent.load(run, planner="cem", memory=str(mem), samples=16, iterations=2)
    assert agent.router.subgoals is not None and agent.router.subgoals.max_k == 25
    bad = cli("memory", "build", "--run", str(run), "--data", str(data), "--out", str(tmp_path / "x.db"),
              "--subgoals", "-1")
    assert bad.returncode == 2 and "subgoals" in bad.stderr and not (tmp_path / "x.db").exists()
