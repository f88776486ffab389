"""Sharing data: Minari export and import (h5py alone), rewards / terminations / truncations
recorded in datasets, and compatibility with the minari package where it is installed."""

import json

import numpy as np
import pytest

from worldjepa.cli import main
from worldjepa.data.collect import CollectConfig, collect
from worldjepa.data.dataset import Dataset
from worldjepa.errors import WorldJepaError

NAME = "worldjepa/tworoom-v0"


@pytest.fixture(scope="module")
def tworoom(tmp_path_factory):
    out = tmp_path_factory.mktemp("minari") / "tworoom.h5"
    collect(CollectConfig(env="worldjepa/TwoRoom-v0", out=str(out), episodes=5, steps=12, size=32), progress=False)
    return str(out)


def test_datasets_record_rewards_terminations_and_truncations(tmp_path):
    import gymnasium as gym

    out = tmp_path / "cartpole.h5"  # a reward of 1 per step, and a termination when the pole falls
    collect(CollectConfig(env="CartPole-v1", out=str(out), episodes=3, steps=200, size=32, policy="random"),
            progress=False)
    env = gym.make("CartPole-v1")
    with Dataset(out) as ds:
        assert {"reward", "terminated", "truncated"} <= set(ds.extras)
        for i in range(ds.num_episodes):
            ep = ds.episode(i)
            assert ep["reward"][0] == 0 and np.all(ep["reward"][1:] == 1.0)  # frame t: the step into it
            assert ep["terminated"][-1] == 1 and not ep["terminated"][:-1].any() and not ep["truncated"].any()
            env.reset(seed=int(ep["seed"]))  # the recorded seed and actions replay the same rewards
            rewards = [env.step(int(np.argmax(a)))[1] for a in ep["actions"]]
            assert rewards == list(ep["reward"][1:])


def test_export_then_import_gives_identical_frames_actions_and_extras(tworoom, tmp_path):
    root = tmp_path / "minari"
    assert main(["export", tworoom, "--to", "minari", NAME, "--root", str(root)]) == 0
    data = root / NAME / "data"
    meta = json.loads((data / "metadata.json").read_text())
    assert meta["dataset_id"] == NAME and meta["total_episodes"] == 5 and meta["jpeg_encoding"] is False
    assert json.loads(meta["observation_space"])["subspaces"]["pixels"]["shape"] == [32, 32, 3]
    copy = tmp_path / "copy.h5"
    assert main(["import", "minari", NAME, "--root", str(root), "--out", str(copy)]) == 0
    with Dataset(tworoom) as a, Dataset(copy) as b:
        assert b.env_id == a.env_id and b.frame_size == a.frame_size and b.num_episodes == a.num_episodes
        assert b.meta["action_space"] == a.meta["action_space"] and sorted(b.extras) == sorted(a.extras)
        for i in range(a.num_episodes):
            ea, eb = a.episode(i), b.episode(i)
            for key in ("frames", "actions", "seed", *a.extras):
                np.testing.assert_array_equal(eb[key], ea[key], err_msg=key)
    assert main(["export", tworoom, "--to", "minari", NAME, "--root", str(root)]) == 2  # never overwritten


def test_bad_ids_formats_and_data_are_one_line_errors(tworoom, tmp_path, capsys):
    assert main(["export", tworoom, "--to", "minari", "no-version", "--root", str(tmp_path)]) == 2
    assert "NAME-vVERSION" in capsys.readouterr().err
    assert main(["export", tworoom, "--to", "lerobot", NAME]) == 2
    assert main(["import", "minari", "ns/none-v0", "--root", str(tmp_path), "--out", str(tmp_path / "x.h5")]) == 2
    assert "no Minari dataset" in capsys.readouterr().err
    from worldjepa.data.minari import _find_pixels

    with pytest.raises(WorldJepaError, match="no image observation"):
        _find_pixels({"type": "Box", "dtype": "float32", "shape": [4], "low": [0] * 4, "high": [1] * 4})


def test_the_minari_package_reads_an_export_and_writes_what_we_import(tworoom, tmp_path, monkeypatch):
    minari = pytest.importorskip("minari")
    import gymnasium as gym

    root = tmp_path / "minari"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    assert main(["export", tworoom, "--to", "minari", NAME]) == 0
    mds = minari.load_dataset(NAME)
    assert mds.total_episodes == 5
    with Dataset(tworoom) as ds:
        for i, ep in enumerate(mds.iterate_episodes()):
            mine = ds.episode(i)
            np.testing.assert_array_equal(ep.observations["pixels"], mine["frames"])
            np.testing.assert_array_equal(ep.observations["state"], mine["state"])
            np.testing.assert_array_equal(ep.actions, mine["actions"])
            np.testing.assert_array_equal(ep.rewards, mine["reward"][1:])
            assert len(ep.terminations) == len(ep.truncations) == len(mine["actions"])

    # a dataset written by minari itself: images in a Dict observation, Discrete actions, JPEG off
    obs_space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (8, 8, 3), np.uint8),
                                 "pos": gym.spaces.Box(-1, 1, (2,), np.float32)})
    act_space = gym.spaces.Discrete(3)
    from minari.data_collector import EpisodeBuffer
    from minari.dataset.minari_storage import MinariStorage

    rng = np.random.default_rng(0)
    (root / "other/made-v0").mkdir(parents=True)
    storage = MinariStorage.new(root / "other/made-v0" / "data", observation_space=obs_space, action_space=act_space,
                                jpeg_encoding=False)
    frames = rng.integers(0, 256, (7, 8, 8, 3), dtype=np.uint8)
    pos = rng.uniform(-1, 1, (7, 2)).astype(np.float32)
    actions = rng.integers(0, 3, 6)
    rewards = rng.normal(size=6)
    terms = np.array([0, 0, 0, 0, 0, 1], bool)
    storage.update_episodes([EpisodeBuffer(id=0, seed=42, observations={"image": frames, "pos": pos},
                                           actions=actions, rewards=rewards, terminations=terms,
                                           truncations=np.zeros(6, bool), infos={})])
    storage.update_metadata({"dataset_id": "other/made-v0", "minari_version": minari.__version__})
    out = tmp_path / "made.h5"
    assert main(["import", "minari", "other/made-v0", "--out", str(out), "--env", "CartPole-v1"]) == 0
    with Dataset(out) as ds:
        ep = ds.episode(0)
        assert ds.env_id == "CartPole-v1" and ds.meta["action_space"]["kind"] == "discrete"
        np.testing.assert_array_equal(ep["frames"], frames)
        np.testing.assert_array_equal(ep["pos"], pos)
        np.testing.assert_array_equal(ep["actions"].argmax(1), actions)
        np.testing.assert_allclose(ep["reward"][1:], rewards, rtol=1e-6)
        assert ep["terminated"][-1] == 1 and int(ep["seed"]) == 42
