"""GIFs, MP4s and contact sheets: what the agent saw, beside what it imagined and the goal."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ConfigError

CAPTION = 10  # pixels of a line of text above the panels


def side_by_side(panels: Sequence[np.ndarray], labels: Sequence[str] = (), scale: int = 2, gap: int = 2,
                 title: str = "") -> np.ndarray:
    """Frames (H, W, 3) uint8 of equal size -> one (H', W', 3) frame with optional captions
    (one per panel) and a ``title`` line above them (e.g. the policy, the step and the outcome)."""
    h, w = panels[0].shape[:2]
    top = (CAPTION if title else 0) + (CAPTION if labels else 0)
    out = np.full((h * scale + top, len(panels) * (w * scale + gap) - gap, 3), 255, np.uint8)
    for i, p in enumerate(panels):
        x = i * (w * scale + gap)
        out[top:, x:x + w * scale] = np.repeat(np.repeat(p[..., :3], scale, 0), scale, 1)
    if labels or title:
        from PIL import Image, ImageDraw

        img = Image.fromarray(out)
        draw = ImageDraw.Draw(img)
        if title:
            draw.text((2, -1), title, fill=(0, 0, 0))
        for i, text in enumerate(labels):
            draw.text((i * (w * scale + gap) + 2, top - CAPTION - 1), text, fill=(0, 0, 0))
        out = np.asarray(img)
    return out


def check_video_name(path: str | Path, flag: str = "--gif") -> None:
    """A clear error now, not after the episodes: ``.gif``, or ``.mp4`` with imageio-ffmpeg installed."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ConfigError(f"{flag} {path}: write a .gif, or an .mp4 (pip install 'worldjepa[video]')")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise ConfigError(f"{flag} {path}: MP4 needs imageio-ffmpeg: pip install 'worldjepa[video]' "
                              "(or write a .gif)") from None



def numbered(path: str | Path, i: int) -> str:
    """``eval.gif`` -> ``eval-1.gif`` (one file per policy)."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{i}{p.suffix}"))


def save_gif(path: str | Path, frames: Sequence[np.ndarray], fps: float = 10.0) -> Path:
    """Write frames (each (H, W, 3) uint8) as a looping GIF, or as an MP4 when ``path`` ends in
    ``.mp4`` (H.264 through imageio-ffmpeg; frames padded to even sides), atomically."""
    from ..atomic import atomic_write_bytes

    if not frames:
        raise ValueError("no frames to write")
    check_video_name(path, "video")
    buf = io.BytesIO()
    if Path(path).suffix.lower() == ".mp4":
        import imageio.v3 as iio

        h, w = frames[0].shape[:2]
        even = [np.pad(np.asarray(f, np.uint8), ((0, h % 2), (0, w % 2), (0, 0)), constant_values=255) for f in frames]
        buf.write(iio.imwrite("<bytes>", np.stack(even), extension=".mp4", plugin="FFMPEG", fps=fps,
                              codec="libx264", macro_block_size=1))
    else:
        from PIL import Image

        images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
        images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
