"""Still frames for image-level self-supervised learning and probes.

:func:`load_frames` reads either a worldjepa dataset (``.h5``: the frames of one split, with
the ``state`` extra as regression targets) or a folder of images (png/jpg, read with PIL and
resized; when every image sits in a sub-folder, the sub-folder names are class labels).
Both come back as :class:`Frames`: uint8 ``(N, H, W, 3)`` arrays held in memory.

A folder has no recorded split: an image is in ``test`` when ``crc32(relative path) % 5 == 0``
(about 20%, stable when images are added), ``train`` otherwise; ``val`` is empty.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError

__all__ = ["Frames", "IMAGE_SUFFIXES", "list_images", "load_frames"]

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class Frames:
    """Frames of one split with what probes can predict from them.

    ``frames`` (N, H, W, 3) uint8; ``states`` (N, K) float32 physical state or ``None``;
    ``labels`` (N,) int64 class index or ``None``; ``classes`` the label names;
    ``episodes`` (N,) int64 episode index of each frame (datasets only, else ``None``), frames
    of one episode stored together in time order (a capped subset keeps that order).
    ``times`` (N,) int64: each frame's step in its episode (with ``episodes``).
    """

    frames: np.ndarray
    states: np.ndarray | None = None
    labels: np.ndarray | None = None
    classes: tuple[str, ...] = ()
    episodes: np.ndarray | None = None
    times: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def subset(self, idx: np.ndarray) -> "Frames":
        """The frames at indices ``idx`` (and their targets)."""
        pick = (lambda a: None if a is None else a[idx])
        return Frames(self.frames[idx], pick(self.states), pick(self.labels), self.classes,
                      pick(self.episodes), pick(self.times))

    def neighbours(self, idx: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Indices of the frames ``offsets`` steps (any sign) after the frames ``idx`` in the same
        episode, broadcast together; an offset that would leave the episode (or skip a frame
        a capped subset dropped) keeps the frame itself. Needs ``episodes``."""
        if self.episodes is None or self.times is None:
            raise DatasetError("temporal views need frames from a worldjepa dataset (episodes), not an image folder")
        idx = np.broadcast_to(idx, np.broadcast_shapes(np.shape(idx), np.shape(offsets)))
        j = np.clip(idx + offsets, 0, len(self.frames) - 1)
        ok = (self.episodes[j] == self.episodes[idx]) & (self.times[j] - self.times[idx] == offsets)
        return np.where(ok, j, idx)


def list_images(folder: str | Path) -> tuple[list[Path], list[str] | None]:
    """Image files under ``folder`` (sorted) and, when all are in sub-folders, their labels."""
    root = Path(folder)
    if not root.exists():
        raise DatasetError(f"no such file or directory: {root}")
    if not root.is_dir():
        raise DatasetError(f"{root} is neither a worldjepa dataset (.h5) nor a folder of images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DatasetError(f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    parts = [p.relative_to(root).parts for p in files]
    if all(len(q) >= 2 for q in parts):
        return files, [q[0] for q in parts]
    return files, None


def _split_of(rel: str) -> str:
    return "test" if zlib.crc32(rel.encode()) % 5 == 0 else "train"


def _read_image(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)  # (size, size, 3)
    except (UnidentifiedImageError, OSError) as e:
        raise DatasetError(f"cannot read image {path}: {e}") from None


def _folder_frames(root: Path, split: str, size: int, max_frames: int, seed: int) -> Frames:
    files, names = list_images(root)
    rel = [str(p.relative_to(root)) for p in files]
    splits = [_split_of(r) for r in rel]
    if "test" not in splits and len(files) > 1:
        splits[-1] = "test"  # a tiny folder still gets one held-out image
    if split == "val":
        split = "test"  # folders have no validation split; the test images stand in
    keep = [i for i, s in enumerate(splits) if s == split]
    if not keep:
        raise DatasetError(f"{root}: no images in the '{split}' split ({len(files)} images in all)")
    keep = _cap(np.asarray(keep), max_frames, seed)
    frames = np.stack([_read_image(files[i], size) for i in keep])  # (N, size, size, 3)
    labels, classes = None, ()
    if names is not None:
        classes = tuple(sorted(set(names)))
        labels = np.asarray([classes.index(names[i]) for i in keep], dtype=np.int64)
    return Frames(frames, None, labels, classes)


def _cap(idx: np.ndarray, max_frames: int, seed: int) -> np.ndarray:
    """At most ``max_frames`` of ``idx`` (a seeded random subset, in order); 0 keeps all."""
    if max_frames and len(idx) > max_frames:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(idx, max_frames, replace=False))
    return idx


def _dataset_frames(path: Path, split: str, size: int | None, max_frames: int, seed: int) -> Frames:
    from .dataset import Dataset

    with Dataset(path) as ds:
        eps = ds.episode_ids(split)
        if len(eps) == 0:
            raise DatasetError(f"{path}: the '{split}' split is empty ({ds.num_episodes} episodes); collect more")
        has_state = "state" in ds.extras
        frames, states, ep_ids, times = [], [], [], []
        for e in eps:
            s, n = int(ds.starts[e]), int(ds.lengths[e])
            frames.append(ds.read_frames(slice(s, s + n)))  # (L, H, W, 3)
            ep_ids.append(np.full(n, e, np.int64))
            times.append(np.arange(n, dtype=np.int64))
            if has_state:
                states.append(ds.read_extra("state", slice(s, s + n)).reshape(n, -1))  # (L, K)
    f = np.concatenate(frames)
    st = np.concatenate(states).astype(np.float32) if has_state else None
    keep = _cap(np.arange(len(f)), max_frames, seed)
    f, st = f[keep], (None if st is None else st[keep])
    if size is not None and size != f.shape[1]:
        f = _resize(f, size)
    return Frames(f, st, episodes=np.concatenate(ep_ids)[keep], times=np.concatenate(times)[keep])


def _resize(frames: np.ndarray, size: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, size, size, 3) uint8, bilinear."""
    import torch
    import torch.nn.functional as F

    out = []
    for i in range(0, len(frames), 512):
        x = torch.from_numpy(frames[i:i + 512]).permute(0, 3, 1, 2).float()  # (b, 3, H, W)
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        out.append(x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def load_frames(path: str | Path, split: str = "train", size: int | None = None,
                max_frames: int = 0, seed: int = 0) -> Frames:
    """Frames of ``split`` from a dataset file or an image folder.

    Args:
        path: a worldjepa dataset (``.h5``) or a folder of png/jpg images.
        split: ``train``, ``val`` or ``test`` (a folder's ``val`` is its ``test``).
        size: frame side in pixels; ``None`` keeps a dataset's size (images default to 64).
        max_frames: keep a seeded random subset of at most this many frames (0: all).
        seed: seed of that subset.
    """
    p = Path(path)
    if p.is_file():
        from ..utils import sniff

        if sniff(p) != "hdf5":
            raise DatasetError(f"{p} is neither a worldjepa dataset (.h5) nor a folder of images")
        return _dataset_frames(p, split, size, max_frames, seed)
    return _folder_frames(p, split, size or 64, max_frames, seed)
