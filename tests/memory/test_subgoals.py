"""The subgoal model learned from remembered episodes: its training pairs, what it learns, how it
is kept in the memory file, and how the router uses it where the map has no route."""

import sqlite3

import numpy as np
import pytest
import torch

from worldjepa.errors import MemoryFileError, MemoryInputError, WorldJepaError
from worldjepa.memory import MemoryMap, MemoryStore, Router
from worldjepa.memory.subgoals import SubgoalModel, _Pairs, fit_subgoals, load_subgoals, save_subgoals


def test_pairs_aim_at_the_last_entry_within_k_steps_and_never_past_the_goal():
    # two episodes remembered every 2nd step; the embedding is (episode, step) itself
    ep = np.repeat([3, 7], 10)
    st = np.tile(np.arange(0, 20, 2), 2)
    z = np.stack([ep, st], 1).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(z))  # any order in, sorted inside
    pairs = _Pairs(z[order], ep[order], st[order])
    zi, zj, k, zt, d = (x.numpy() for x in pairs.sample(4000, 7, np.random.default_rng(1)))
    assert (zi[:, 0] == zj[:, 0]).all() and (zi[:, 0] == zt[:, 0]).all()  # one episode each
    assert (zj[:, 1] > zi[:, 1]).all() and np.array_equal(d, zj[:, 1] - zi[:, 1])
    want = np.minimum(zi[:, 1] + np.maximum(2 * (k // 2), 2), zj[:, 1])  # the last stored step <= s + k, >= next
    assert np.array_equal(zt[:, 1], want)
    assert set(np.unique(k)) == set(range(1, 8))


def _l_paths(n, seed):
    """Episodes of a point walking 1 per step along x, then along y (an L): the straight line from
    a point to a later one cuts the corner; the way the episode went does not."""
    rng = np.random.default_rng(seed)
    zs, eps, steps = [], [], []
    for e in range(n):
        a, b = rng.integers(5, 15, 2)
        sx, sy = rng.uniform(-1, 1, 2)
        path = [(sx + t * 0.1, sy) for t in range(a)] + [(sx + a * 0.1, sy + t * 0.1) for t in range(b + 1)]
        zs.append(np.asarray(path, np.float32))
        eps.append(np.full(len(path), e))
        steps.append(np.arange(len(path)))
    return np.concatenate(zs), np.concatenate(eps), np.concatenate(steps)


def test_the_model_learns_the_way_the_episodes_went_not_the_straight_line():
    z, ep, st = _l_paths(300, 0)
    model, fit = fit_subgoals(z, ep, st, train_steps=1500, batch=256, hidden=64, layers=2, max_k=8, seed=0)
    assert fit["val_episodes"] == 30 and fit["train_episodes"] == 270
    assert model.step_scale == max(st[ep == e].max() for e in np.unique(ep))  # the longest episode, in steps
    assert fit["val_subgoal_error"] < 0.5 * fit["val_line_error"] < fit["val_stay_error"]
    assert fit["val_steps_mae"] < 2.0
    # at the corner's start, 4 steps ahead toward a goal up the y leg: along x, not diagonally
    sub, steps = model.propose(np.array([0.0, 0.0]), np.array([0.6, 0.5]), 4)
    assert abs(sub[0] - 0.4) < 0.1 and abs(sub[1]) < 0.1 and abs(steps - 11) < 2.5


def test_fit_refuses_what_holds_no_path():
    with pytest.raises(WorldJepaError, match="two entries"):
        fit_subgoals(np.zeros((3, 2)), np.arange(3), np.zeros(3), train_steps=1)
    with pytest.raises(WorldJepaError, match="must be"):
        fit_subgoals(np.zeros((3, 2)), np.arange(2), np.zeros(3), train_steps=1)


def test_the_model_is_kept_in_the_memory_file_and_read_back_identically(tmp_path):
    torch.manual_seed(0)
    model = SubgoalModel(4, hidden=16, layers=2, max_k=10, step_scale=50.0).eval()
    path = tmp_path / "m.db"
    with MemoryStore.create(path, dim=4, fingerprint="f") as store:
        assert load_subgoals(store) is None
        save_subgoals(store, model, {"train_steps": 3})
    with MemoryStore.open(path, readonly=True) as store:
        back = load_subgoals(store)
        config, _ = store.model("subgoals")
    assert config["fit"] == {"train_steps": 3} and config["max_k"] == 10
    z, g = np.random.default_rng(0).normal(size=(2, 4))
    for k in (1, 7, 30):  # 30: clipped to max_k by both
        a, b = model.propose(z, g, k), back.propose(z, g, k)
        assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert np.array_equal(model.propose(z, g, 30)[0], model.propose(z, g, 10)[0])


def test_a_file_from_before_the_models_table_reads_as_holding_none_and_takes_one(tmp_path):
    path = tmp_path / "old.db"
    MemoryStore.create(path, dim=4, fingerprint="f").close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE models")
    conn.commit()
    conn.close()
    with MemoryStore.open(path) as store:
        assert store.model("subgoals") is None
        save_subgoals(store, SubgoalModel(4, hidden=8, layers=1), {})
        assert load_subgoals(store) is not None


def test_a_broken_or_foreign_model_is_a_clear_error(tmp_path):
    path = tmp_path / "m.db"
    with MemoryStore.create(path, dim=4, fingerprint="f") as store:
        save_subgoals(store, SubgoalModel(6, hidden=8, layers=1), {})  # 6-D embeddings in a 4-D memory
        with pytest.raises(MemoryFileError, match="6-D"):
            load_subgoals(store)
        store.set_model("subgoals", {"kind": "subgoals", "dim": 4}, b"not safetensors")
        with pytest.raises(MemoryFileError, match="cannot be read"):
            load_subgoals(store)
        with pytest.raises(MemoryInputError, match="JSON"):
            store.set_model("x", {"a": float("nan")}, b"w")


class _Toward:
    """A stand-in subgoal model: a step of 1 toward the goal, which lies |g - z| steps away."""

    def propose(self, z, g, k):
        d = np.linalg.norm(g - z)
        return z + (g - z) / max(d, 1e-9), float(d)


def test_the_router_follows_the_subgoal_model_where_the_map_has_no_route():
    # two landmarks with no edge between them: no route from one to the other
    m = MemoryMap(np.array([[0.0, 0.0], [10.0, 0.0]]), np.zeros((0, 2)), np.zeros(0), radius=1.0)
    flat = Router(m, lookahead=3, learn=False)
    assert flat.next_goal(np.array([0.0, 0.0]), np.array([10.0, 0.0]), 0) is None  # flat MPC
    assert flat.info["fallback"] and flat.info["guided"] == 0
    r = Router(m, lookahead=3, learn=False, subgoals=_Toward())
    sub = r.next_goal(np.array([0.0, 0.0]), np.array([10.0, 0.0]), 0)
    assert np.allclose(sub, [1.0, 0.0]) and r.info["fallback"] and r.info["guided"] == 1
    assert np.allclose(r.guide, sub)
    assert r.next_goal(np.array([8.0, 0.0]), np.array([10.0, 0.0]), 5) is None  # 2 <= 3 steps: the goal itself
    assert r.guide is None and r.info["guided"] == 1
    r.reset()
    assert r.info["guided"] == 0


def test_a_map_read_from_a_file_brings_its_subgoal_model(tmp_path, monkeypatch):
    from types import SimpleNamespace

    import worldjepa.world_model as wm
    from worldjepa.memory.build import load_map

    path = tmp_path / "m.db"
    with MemoryStore.create(path, dim=2, fingerprint="fp") as store:
        ids = store.add(np.array([[0.0, 0.0], [1.0, 0.0]]), episode=0, step=[0, 1])
        store.set_graph(ids, [[0, 1]], [1.0], {"radius": 0.5})
        save_subgoals(store, SubgoalModel(2, hidden=8, layers=1), {"train_steps": 1})
    monkeypatch.setattr(wm, "model_fingerprint", lambda m: "fp")  # what load_map checks the file against
    m = load_map(path, SimpleNamespace(latent_dim=2))
    assert isinstance(m.subgoals, SubgoalModel) and Router(m).subgoals is m.subgoals

def test_the_plan_gif_shows_the_remembered_place_nearest_the_learned_subgoal():
    from types import SimpleNamespace

    from worldjepa.cli.plan import _subgoal_panel

    thumbs = np.stack([np.full((4, 4, 3), 10, np.uint8), np.full((4, 4, 3), 200, np.uint8)])
    m = MemoryMap(np.array([[0.0, 0.0], [10.0, 0.0]]), np.zeros((0, 2)), np.zeros(0), radius=1.0, thumbs=thumbs)
    r = Router(m, lookahead=3, learn=False, subgoals=_Toward())
    goal = np.zeros((8, 8, 3), np.uint8)
    r.next_goal(np.array([8.5, 0.0]), np.array([-20.0, 0.0]), 0)  # no way 1 -> 0; a subgoal at (7.5, 0): place 1
    frame, label = _subgoal_panel(SimpleNamespace(router=r), goal)
    assert label.startswith("learned subgoal") and frame.shape == goal.shape and (frame == 200).all()
    r.next_goal(np.array([-19.0, 0.0]), np.array([-20.0, 0.0]), 5)  # the goal within reach: the goal itself
    frame, label = _subgoal_panel(SimpleNamespace(router=r), goal)
    assert frame is goal and "leg" in label


def test_the_memory_package_still_imports_without_torch():
    import subprocess
    import sys

    from tests.conftest import ROOT

    code = "import sys, worldjepa.memory; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch')[:3])"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr
