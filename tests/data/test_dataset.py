"""The HDF5 dataset: round trip, windows within episodes, splits, appends, bad files."""

import numpy as np
import pytest

from worldjepa.data.dataset import Dataset, split_assignment
from worldjepa.data.writer import DatasetWriter
from worldjepa.data.windows import WindowDataset
from worldjepa.errors import DatasetError

META = {"env_id": "toy", "frame_size": 8, "action_space": {"kind": "box", "shape": [2], "dim": 2, "low": [-1, -1], "high": [1, 1]}}


def toy_episode(ep: int, length: int):
    """Frames and states that encode (episode, t), so any mix-up is visible."""
    t = np.arange(length)
    frames = np.zeros((length, 8, 8, 3), np.uint8)
    frames[:, 0, 0, 0] = ep
    frames[:, 0, 0, 1] = t
    actions = np.stack([np.full(length - 1, ep, np.float32), t[:-1].astype(np.float32)], 1)  # (L-1, 2)
    state = np.stack([np.full(length, ep), t], 1).astype(np.float64)  # (L, 2)
    return frames, actions, {"state": state}


def write_toy(path, lengths, append=False):
    with DatasetWriter(path, META, append=append) as w:
        first = w.num_episodes
        for i, L in enumerate(lengths):
            f, a, x = toy_episode(first + i, L)
            w.add_episode(f, a, x, seed=100 + first + i)


def test_round_trip(tmp_path):
    path = tmp_path / "d.h5"
    write_toy(path, [5, 7, 3])
    with Dataset(path) as ds:
        assert ds.num_episodes == 3 and ds.num_frames == 15
        ep = ds.episode(1)
        f, a, x = toy_episode(1, 7)
        np.testing.assert_array_equal(ep["frames"], f)
        np.testing.assert_array_equal(ep["actions"], a)
        np.testing.assert_array_equal(ep["state"], x["state"])
        assert ep["seed"] == 101


@pytest.mark.parametrize("T,k", [(1, 1), (4, 1), (3, 2), (2, 3)])
def test_windows_never_cross_episodes(tmp_path, T, k):
    path = tmp_path / "d.h5"
    lengths = [5, 12, 4, 9, 20, 6, 7, 8, 9, 10, 11]
    write_toy(path, lengths)
    for max_mb in (1e-6, 1e6):  # lazy and in-memory readers must agree
        wd = WindowDataset(path, split=None, num_frames=T, frameskip=k, max_memory_mb=max_mb)
        span = (T - 1) * k + 1
        assert len(wd) == sum(max(0, L - span + 1) for L in lengths)
        for i in range(len(wd)):
            w = wd[i]
            eps, ts = w["state"][:, 0], w["state"][:, 1]
            assert (eps == eps[0]).all(), "a window spans two episodes"
            np.testing.assert_array_equal(np.diff(ts), k)
            np.testing.assert_array_equal(w["frames"][:, 0, 0, 1], ts)
            L = lengths[int(eps[0])]
            acts = w["actions"].reshape(T, k, 2)
            for j in range(T):
                for m in range(k):
                    t = ts[j] + m
                    expect = [eps[0], t] if t < L - 1 else [0, 0]  # zeros past the episode's last action
                    np.testing.assert_array_equal(acts[j, m], expect)
        batch = wd.sample(64, np.random.default_rng(0))
        assert batch["frames"].shape == (64, T, 8, 8, 3) and batch["actions"].shape == (64, T, 2 * k)
        for b in range(64):
            assert (batch["state"][b, :, 0] == batch["state"][b, 0, 0]).all()
            t0, ep = batch["state"][b, 0, 1], batch["state"][b, 0, 0]
            acts = batch["actions"][b].reshape(T * k, 2)
            L = lengths[int(ep)]
            for m in range(T * k):
                expect = [ep, t0 + m] if t0 + m < L - 1 else [0, 0]
                np.testing.assert_array_equal(acts[m], expect)


@pytest.mark.parametrize("max_mb", [1e-6, 1e6])
def test_window_stride_starts_every_n_frames_and_encodes_only_the_frames_windows_hold(tmp_path, max_mb):
    path = tmp_path / "d.h5"
    lengths = [5, 12, 4, 9, 20]
    write_toy(path, lengths)
    T, k, stride = 3, 2, 2
    wd = WindowDataset(path, split=None, num_frames=T, frameskip=k, stride=stride, max_memory_mb=max_mb)
    span = (T - 1) * k + 1
    assert len(wd) == sum(len(range(0, L - span + 1, stride)) for L in lengths)
    ts = np.array([wd[i]["state"][0, 1] for i in range(len(wd))])
    assert (ts % stride == 0).all(), "a window starts off the stride"
    seen = []

    def fn(frames):  # a fake encoder: the frame's (episode, t) code, and a record of what it saw
        seen.append(frames[:, 0, 0, :2].copy())
        return frames[:, 0, 0, :2].astype(np.float32)

    wd.cache_features(fn, batch_size=4)
    seen = np.concatenate(seen)
    assert (seen[:, 1] % stride == 0).all(), "encoded a frame no window holds"
    assert len(seen) == len(np.unique(seen, axis=0)) == len(wd.window_rows)
    batch = wd.sample(32, np.random.default_rng(0))
    np.testing.assert_array_equal(batch["features"], batch["state"])  # each window got its own frames' features
    with pytest.raises(DatasetError, match="stride"):
        WindowDataset(path, split=None, stride=0)


def test_splits_fixed_disjoint_and_stable_under_append(tmp_path):
    path = tmp_path / "d.h5"
    write_toy(path, [4] * 25)
    with Dataset(path) as ds:
        before = {s: set(ds.episode_ids(s)) for s in ("train", "val", "test")}
    assert not (before["train"] & before["test"]) and not (before["train"] & before["val"]) and not (before["val"] & before["test"])
    assert len(before["test"]) >= 2 and len(before["val"]) >= 2
    write_toy(path, [4] * 10, append=True)
    with Dataset(path) as ds:
        assert ds.num_episodes == 35
        for s in before:
            assert before[s] <= set(ds.episode_ids(s))
    np.testing.assert_array_equal(split_assignment(30, seed=3), split_assignment(30, seed=3))
    assert (split_assignment(30, seed=3) != split_assignment(30, seed=4)).any()


def test_append_refuses_another_env_and_overwrite(tmp_path):
    path = tmp_path / "d.h5"
    write_toy(path, [4])
    with pytest.raises(DatasetError, match="exists"):
        write_toy(path, [4])
    with pytest.raises(DatasetError, match="env_id"):
        with DatasetWriter(path, {**META, "env_id": "other"}, append=True):
            pass
    with Dataset(path) as ds:
        assert ds.num_episodes == 1


def test_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "d.h5"
    write_toy(path, [4, 4])
    with pytest.raises(DatasetError):
        with DatasetWriter(path, META, append=True) as w:
            f, a, x = toy_episode(2, 4)
            w.add_episode(f, a[:1], x, seed=0)  # wrong number of actions
    with Dataset(path) as ds:
        assert ds.num_episodes == 2
    assert [p.name for p in tmp_path.iterdir()] == ["d.h5"]


def test_bad_files(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        Dataset(tmp_path / "missing.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(DatasetError, match="not an HDF5"):
        Dataset(junk)
    path = tmp_path / "d.h5"
    write_toy(path, [50] * 4)
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match="truncated|corrupt"):
        Dataset(cut)
    with pytest.raises(DatasetError, match="split is empty"):
        write_toy(tmp_path / "one.h5", [5])
        WindowDataset(tmp_path / "one.h5", split="test")
    with pytest.raises(DatasetError, match="frames a window"):
        WindowDataset(path, split=None, num_frames=60)
    with pytest.raises(DatasetError, match="no extra"):
        WindowDataset(path, split=None, extras=("velocity",))


def test_interrupt_inside_an_episode_publishes_only_complete_ones(tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    calls = {"n": 0}
    real = DatasetWriter._dataset

    def flaky(self, name, sample, dtype):  # Ctrl-C arrives after the 3rd episode's frames were written
        calls["n"] += 1
        if self.added == 2 and name == "actions":
            raise KeyboardInterrupt
        return real(self, name, sample, dtype)

    monkeypatch.setattr(DatasetWriter, "_dataset", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_toy(path, [5, 6, 7])
    with Dataset(path) as ds:
        assert ds.num_episodes == 2 and ds.num_frames == 11
        np.testing.assert_array_equal(ds.episode(1)["frames"], toy_episode(1, 6)[0])
