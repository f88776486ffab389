"""GIFs and contact sheets: what the agent saw, beside what it imagined and the goal."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def side_by_side(panels: Sequence[np.ndarray], labels: Sequence[str] = (), scale: int = 2, gap: int = 2) -> np.ndarray:
    """Frames (H, W, 3) uint8 of equal size -> one (H', W', 3) frame with optional captions."""
    h, w = panels[0].shape[:2]
    caption = 10 if labels else 0
    out = np.full((h * scale + caption, len(panels) * (w * scale + gap) - gap, 3), 255, np.uint8)
    for i, p in enumerate(panels):
        x = i * (w * scale + gap)
        out[caption:, x:x + w * scale] = np.repeat(np.repeat(p[..., :3], scale, 0), scale, 1)
    if labels:
        from PIL import Image, ImageDraw

        img = Image.fromarray(out)
        draw = ImageDraw.Draw(img)
        for i, text in enumerate(labels):
            draw.text((i * (w * scale + gap) + 2, -1), text, fill=(0, 0, 0))
        out = np.asarray(img)
    return out


def save_gif(path: str | Path, frames: Sequence[np.ndarray], fps: float = 10.0) -> Path:
    """Write frames (each (H, W, 3) uint8) as a looping GIF, atomically."""
    from PIL import Image

    from ..atomic import atomic_write_bytes
    import io

    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
