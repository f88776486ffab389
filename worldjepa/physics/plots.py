"""The physics figures, drawn with PIL (no plotting library needed).

:func:`surprise_png`: per-frame surprise for a few violation-of-expectation pairs. One panel
per pair: the model's surprise at each env step for the possible clip (blue) and the
impossible one (red), in dark grey where the two are the same (the twins before the event), a
grey line at the event, and below the chart both clips' frames just
before the event, at it and a few steps after. :func:`scatter_png`: probe predictions
against the true quantities, one panel per quantity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes

POSSIBLE, IMPOSSIBLE, EVENT, BOTH = (40, 90, 200), (210, 40, 40), (150, 150, 150), (60, 60, 60)
CHART_W, CHART_H, PAD = 320, 120, 28


def _chart(curve: dict[str, Any], title: str) -> Any:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (CHART_W + 2 * PAD, CHART_H + 2 * PAD), "white")
    draw = ImageDraw.Draw(img)
    steps = np.asarray(curve["steps"], np.float64)
    ys = [np.nan_to_num(np.asarray(curve[k], np.float64)) for k in ("possible", "impossible")]
    top = max(float(max(y.max() for y in ys)), 1e-12)
    x0, x1 = float(steps.min()), float(max(steps.max(), steps.min() + 1))

    def xy(t: float, v: float) -> tuple[float, float]:
        return PAD + (t - x0) / (x1 - x0) * CHART_W, PAD + CHART_H * (1 - v / top)

    draw.rectangle([PAD, PAD, PAD + CHART_W, PAD + CHART_H], outline=(0, 0, 0))
    ex = xy(curve["event"], 0)[0]
    draw.line([ex, PAD, ex, PAD + CHART_H], fill=EVENT, width=1)
    differ = np.flatnonzero(ys[0] != ys[1])
    split = int(differ[0]) if len(differ) else len(steps)  # the twins' surprise is one curve until they part
    for y, colour in zip(ys, (POSSIBLE, IMPOSSIBLE)):
        part = [xy(t, v) for t, v in zip(steps[max(split - 1, 0):], y[max(split - 1, 0):])]
        if len(part) > 1:
            draw.line(part, fill=colour, width=2)
    if split > 1:
        draw.line([xy(t, v) for t, v in zip(steps[:split], ys[0][:split])], fill=BOTH, width=2)
    draw.text((PAD, 4), title, fill=(0, 0, 0))
    draw.text((PAD + CHART_W // 2 - 100, PAD + CHART_H + 4), "both", fill=BOTH)
    draw.text((PAD + CHART_W // 2 - 70, PAD + CHART_H + 4), "possible", fill=POSSIBLE)
    draw.text((PAD + CHART_W // 2 + 10, PAD + CHART_H + 4), "impossible", fill=IMPOSSIBLE)
    draw.text((2, PAD - 2), f"{top:.3g}", fill=(0, 0, 0))
    draw.text((2, PAD + CHART_H - 8), "0", fill=(0, 0, 0))
    draw.text((PAD, PAD + CHART_H + 4), f"env step {int(x0)}", fill=(0, 0, 0))
    draw.text((PAD + CHART_W - 40, PAD + CHART_H + 4), f"{int(x1)}", fill=(0, 0, 0))
    draw.text((ex + 3, PAD + 2), "event", fill=EVENT)
    return img


def _strip(pair: Any, width: int) -> Any:
    """Both clips' frames at event - 1, event, event + 2 and event + 5, side by side."""
    from PIL import Image

    ts = [min(t, len(pair.possible) - 1) for t in (pair.event - 1, pair.event, pair.event + 2, pair.event + 5)]
    rows = [np.concatenate([clip[t] for t in ts], 1) for clip in (pair.possible, pair.impossible)]
    img = Image.fromarray(np.concatenate(rows, 0))
    return img.resize((width, int(img.height * width / img.width)), Image.NEAREST)


def surprise_png(path: str | Path, curves: list[dict[str, Any]], pairs: list[Any], per_kind: int = 1) -> Path:
    """Write the figure of the first ``per_kind`` pairs of each violation to ``path``; returns it."""
    import io

    from PIL import Image

    panels = []
    seen: dict[str, int] = {}
    for curve, pair in zip(curves, pairs):
        if seen.get(pair.kind, 0) >= per_kind:
            continue
        seen[pair.kind] = seen.get(pair.kind, 0) + 1
        chart = _chart(curve, f"{pair.kind} (pair seed {pair.seed}, event at step {pair.event})")
        strip = _strip(pair, chart.width - 2 * PAD)
        panel = Image.new("RGB", (chart.width, chart.height + strip.height + 8), "white")
        panel.paste(chart, (0, 0))
        panel.paste(strip, (PAD, chart.height))
        panels.append(panel)
    if not panels:
        raise ValueError("no pairs to draw")
    cols = min(len(panels), 2)
    rows = -(-len(panels) // cols)
    w, h = panels[0].width, max(p.height for p in panels)
    sheet = Image.new("RGB", (cols * w, rows * h), "white")
    for i, p in enumerate(panels):
        sheet.paste(p, ((i % cols) * w, (i // cols) * h))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)



def scatter_png(path: str | Path, truth: dict[str, np.ndarray], pred: dict[str, np.ndarray], r2: dict[str, float],
                title: str = "", max_points: int = 1500) -> Path:
    """Write a grid of predicted-vs-true scatter panels, one per quantity (the diagonal in grey)."""
    import io

    from PIL import Image, ImageDraw

    side, pad = 150, 18
    names = list(truth)
    cols = min(len(names), 4)
    rows = -(-len(names) // cols)
    sheet = Image.new("RGB", (cols * (side + 2 * pad), rows * (side + 2 * pad) + 16), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), title, fill=(0, 0, 0))
    for k, name in enumerate(names):
        t, p = np.asarray(truth[name], np.float64), np.asarray(pred[name], np.float64)
        keep = np.linspace(0, len(t) - 1, min(len(t), max_points)).astype(int)
        lo, hi = float(t.min()), float(max(t.max(), t.min() + 1e-9))
        x0, y0 = (k % cols) * (side + 2 * pad) + pad, (k // cols) * (side + 2 * pad) + pad + 16

        def at(u: float, v: float) -> tuple[float, float]:
            return x0 + (u - lo) / (hi - lo) * side, y0 + side * (1 - (np.clip(v, lo, hi) - lo) / (hi - lo))

        draw.rectangle([x0, y0, x0 + side, y0 + side], outline=(0, 0, 0))
        draw.line([at(lo, lo), at(hi, hi)], fill=EVENT)
        for u, v in zip(t[keep], p[keep]):
            cx, cy = at(u, v)
            draw.point((cx, cy), fill=POSSIBLE)
        draw.text((x0, y0 - 13), f"{name}  R2 {r2[name]:.3f}", fill=(0, 0, 0))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


__all__ = ["scatter_png", "surprise_png"]
