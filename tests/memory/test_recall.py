"""Recall over a memory: answers from hand-made memories, baselines that forget, the repeat check,
and streams embedded in chunks exactly as a whole."""

import numpy as np
import pytest
import torch

from worldjepa.errors import WorldJepaError
from worldjepa.memory import MemoryStore
from worldjepa.memory.build import embed_episode, embed_stream
from worldjepa.memory.recall import Gallery, Recall, every_kth_rows, fifo_rows, frame_difference, remember_stream
from worldjepa.metrics import boundary_f1, mean_relative_accuracy

FP = "recall-test"
D = 4
EXAMPLES = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], np.float32) * 4  # background, 0, 1, 2
LABELS = np.array([-1, 0, 1, 2])
CHOICES = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0], [1, 2, 0]])


def stream(shows: dict[int, int], length: int = 100, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (T, D) near the background, except at the frames ``shows`` maps to a label (near that
    label's example, held 3 frames), and their surprise (a spike at each appearance)."""
    rng = np.random.default_rng(seed)
    z = (0.3 * rng.standard_normal((length, D))).astype(np.float32)
    s = 1.0 + 0.01 * rng.standard_normal(length)
    for t, label in shows.items():
        z[t:t + 3] = EXAMPLES[label + 1] + 0.05 * rng.standard_normal((3, D))
        s[t] = 10.0
    return z, s


def memory(tmp_path, z, s, rows=None, **kw) -> MemoryStore:
    mem = MemoryStore.create(tmp_path / f"m{len(list(tmp_path.iterdir()))}.db", dim=D, fingerprint=FP, thumb_size=0, **kw)
    remember_stream(mem, z, s, None, rows, batch=7)
    return mem


def test_answers_from_a_hand_made_memory(tmp_path):
    z, s = stream({10: 1, 35: 0, 60: 2, 85: 1})  # 1 first, then 0, then 2, then 1 again
    with memory(tmp_path, z, s) as mem:
        r = Recall(mem, Gallery(EXAMPLES, LABELS))
        assert r.first_seen() == {1: 10.0, 0: 35.0, 2: 60.0}
        assert sorted(r.ids.tolist()) == [10, 11, 12, 35, 36, 37, 60, 61, 62, 85, 86, 87]
        for seed in range(5):  # the answer does not depend on the tie-breaking generator
            assert r.answer_order(CHOICES, np.random.default_rng(seed)) == 1
        assert r.count() == 3 and r.count_events() == 4  # the revisit of 1 is its own event
    with pytest.raises(WorldJepaError, match="choices"):
        r.answer_order(np.zeros(3), np.random.default_rng(0))


def test_a_memory_that_saw_nothing_answers_at_chance(tmp_path):
    z, s = stream({})
    with memory(tmp_path, z, s) as mem:
        r = Recall(mem, Gallery(EXAMPLES, LABELS))
        assert r.count() == 0 and r.first_seen() == {}
        picks = [r.answer_order(CHOICES, np.random.default_rng(i)) for i in range(400)]
    assert np.bincount(picks, minlength=4).min() > 70  # each of the 4 choices about a quarter of the time


def test_fifo_forgets_what_it_should_and_every_kth_misses_brief_sightings(tmp_path):
    T, N = 600, 40
    z, s = stream({50: 0, 300: 1, 590: 2}, length=T)
    np.testing.assert_array_equal(fifo_rows(T, N), np.arange(560, 600))
    np.testing.assert_array_equal(every_kth_rows(T, N), np.arange(0, 600, 15))
    assert len(fifo_rows(30, N)) == 30 and len(every_kth_rows(601, N)) <= N
    gallery = Gallery(EXAMPLES, LABELS)
    with memory(tmp_path, z, s, fifo_rows(T, N)) as fifo, memory(tmp_path, z, s, every_kth_rows(T, N)) as kth, \
            memory(tmp_path, z, s, capacity=N) as ours:
        assert len(fifo) == len(kth) == len(ours) == N
        assert Recall(fifo, gallery).first_seen() == {2: 590.0}  # only the last one is still in the window
        assert Recall(kth, gallery).first_seen() == {1: 300.0}  # 3-frame sightings: only one falls on a multiple of 15
        assert Recall(ours, gallery).first_seen() == {0: 50.0, 1: 300.0, 2: 590.0}  # kept for their surprise


def test_a_stream_that_revisits_the_same_object_counts_it_once(tmp_path):
    z, s = stream({10: 0, 35: 0, 60: 0, 85: 1})  # object 0 seen three times, object 1 once
    gallery = Gallery(EXAMPLES, LABELS)
    with memory(tmp_path, z, s, capacity=40, merge_radius=0.5) as merged, memory(tmp_path, z, s) as every:
        a, b = Recall(merged, gallery), Recall(every, gallery)
        assert a.count() == b.count() == 2
        assert a.first_seen() == b.first_seen() == {0: 10.0, 1: 85.0}
        assert a.count_events() == 2  # the revisits merged into the first sighting's entries
        assert b.count_events() == 4  # counting events counts a revisit again (Cambrian-S's failure)
        assert mean_relative_accuracy(b.count_events(), 2) == 0.0 and mean_relative_accuracy(a.count(), 2) == 1.0


def test_thumbnail_galleries_find_a_small_square_whatever_the_background_noise(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(100, 140, (50, 32, 32, 3)).astype(np.uint8)
    frames[[7, 8, 30], 4:12, 20:28] = [250, 0, 200]  # the object at frames 7, 8 and 30
    example = np.full((2, 32, 32, 3), 120, np.uint8)
    example[1, 4:12, 20:28] = [250, 0, 200]
    with MemoryStore.create(tmp_path / "t.db", dim=D, fingerprint=FP, thumb_size=8) as mem:
        remember_stream(mem, rng.standard_normal((50, D)).astype(np.float32), np.ones(50), lambda r: frames[r])
        gallery = Gallery.of_thumbnails(example, [-1, 0], mem.thumb_size)
        assert gallery.examples.shape == (2, 8 * 8 * 3) and gallery.space == "thumbnail"
        r = Recall(mem, gallery)
        assert r.ids.tolist() == [7, 8, 30] and r.first_seen() == {0: 7.0}
        with pytest.raises(WorldJepaError, match="thumbnail examples have 12 values, the memory's 192"):
            Recall(mem, Gallery(np.zeros((1, 12)), [0], "thumbnail"))
        with pytest.raises(WorldJepaError, match="embedding examples have 3 values, the memory's 4"):
            Recall(mem, Gallery(np.zeros((1, 3)), [0]))
    for bad in ((np.zeros((2, 3)), [0]), (np.full((1, 3), np.nan), [0]), (np.zeros((1, 3)), [-2])):
        with pytest.raises(WorldJepaError):
            Gallery(*bad)
    with pytest.raises(WorldJepaError, match="space"):
        Gallery(np.zeros((1, 3)), [0], "pixels")


def test_frame_difference_and_boundary_f1():
    frames = np.zeros((6, 4, 4, 3), np.uint8)
    frames[3:] = 255
    d = frame_difference(frames)
    assert np.isnan(d[0]) and d[3] == 1.0 and (d[[1, 2, 4, 5]] == 0).all()
    assert frame_difference(frames[3:], previous=frames[2])[0] == 1.0
    r = boundary_f1([10, 12, 50], [11, 49, 80], tol=2)  # 12 is a second hit on 11: a false positive
    assert (r["hits"], r["precision"], r["recall"]) == (2, 2 / 3, 2 / 3)
    assert boundary_f1([], [], 3)["f1"] == 1.0 and boundary_f1([5], [], 3)["f1"] == 0.0


def test_a_stream_embedded_in_chunks_equals_the_whole_episode():
    from tests.test_world_model import CFG
    from worldjepa.world_model import build_world_model

    torch.manual_seed(0)
    model = build_world_model(CFG).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (47, CFG.frame_size, CFG.frame_size, 3), dtype=np.uint8)
    actions = rng.standard_normal((46, CFG.action_dim)).astype(np.float32)
    z, s = embed_episode(model, {"frames": frames, "actions": actions})
    zc, sc = embed_stream(model, lambda a, b: frames[a:b], actions, chunk=10)
    np.testing.assert_allclose(zc, z, atol=1e-5)
    np.testing.assert_allclose(sc, s, atol=1e-6, equal_nan=True)
    assert np.isnan(s[:CFG.frameskip]).all() and np.isfinite(s[CFG.frameskip:]).all()
