"""Figures as PNG, drawn with Pillow (a core dependency; no matplotlib): the training curves of
runs side by side (``worldjepa plot``) and the success rates of an evaluation with their 95%
CIs (``worldjepa eval --plot``)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError, WorldJepaError

# train/loss; validation (world models) ; probes (world models: val/probe_r2; pretrain: probe/*)
DEFAULT_PANELS = ("train/loss", "val/pred_over_copy", "val/probe_r2", "probe/r2", "probe/acc")
COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
PANEL_W, PANEL_H, MARGIN = 360, 240, 52
INK, GRID, BG = (30, 30, 30), (225, 225, 225), (255, 255, 255)

Series = dict[str, list[tuple[float, float]]]  # metric -> [(step, value)]


def _font(size: int = 12) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def _tick_labels(values: list[float]) -> list[str]:
    """Labels for the ticks ``values``: 3 significant digits, more when that would print two
    ticks alike (a curve that moves in its fourth digit, such as a probe's R^2 near 1)."""
    for digits in range(3, 8):
        labels = [f"{v:.{digits}g}" for v in values]
        if len(set(labels)) == len(labels):
            return labels
    return labels


def run_series(run: str | Path) -> Series:
    """Every numeric metric of a run's ``metrics.jsonl`` as (step, value) points."""
    from ..training.runfiles import read_metrics

    path = Path(run) / "metrics.jsonl" if Path(run).is_dir() else Path(run)
    if not path.is_file():
        raise WorldJepaError(f"{run}: no metrics.jsonl (a `worldjepa train` or `pretrain` run directory)")
    out: Series = {}
    for row in read_metrics(path):
        for key, value in row.items():
            if key not in ("step", "time") and isinstance(value, (int, float)) and math.isfinite(value):
                out.setdefault(key, []).append((float(row.get("step", 0)), float(value)))
    return out


def choose_panels(series: Sequence[Series], wanted: Sequence[str] = ()) -> list[str]:
    """``wanted`` (each must be in some run), else the default panels any run has."""
    have = set().union(*series)
    for key in wanted:
        if key not in have:
            raise ConfigError(f"no run logged {key!r}; they logged: {', '.join(sorted(have)) or 'nothing'}")
    panels = list(wanted) or [k for k in DEFAULT_PANELS if k in have]
    if not panels:
        raise WorldJepaError("the runs logged none of " + ", ".join(DEFAULT_PANELS) + "; name metrics with --metric")
    return panels


def _draw_panel(draw: Any, x0: int, y0: int, title: str, lines: list[tuple[tuple[int, int, int], list]]) -> None:
    """One panel at (x0, y0): a titled box with y and x ticks and one polyline per run."""
    font = _font(11)
    pts = [p for _, ps in lines for p in ps]
    box = (x0 + MARGIN, y0 + 22, x0 + PANEL_W - 10, y0 + PANEL_H - 26)  # left, top, right, bottom
    draw.text((x0 + MARGIN, y0 + 4), title, fill=INK, font=_font(13))
    draw.rectangle(box, outline=INK)
    if not pts:
        draw.text((box[0] + 8, box[1] + 8), "not logged", fill=INK, font=font)
        return
    ys = [v for _, v in pts]
    log = min(ys) > 0 and max(ys) / min(ys) > 20  # losses that fall by orders of magnitude
    f = math.log10 if log else (lambda v: v)
    xmin, xmax = min(s for s, _ in pts), max(s for s, _ in pts)
    ymin, ymax = f(min(ys)), f(max(ys))
    if ymax - ymin < 1e-12:
        ymin, ymax = ymin - 0.5, ymax + 0.5
    xmax = xmax if xmax > xmin else xmin + 1

    def at(s: float, v: float) -> tuple[float, float]:
        return (box[0] + (s - xmin) / (xmax - xmin) * (box[2] - box[0]),
                box[3] - (f(v) - ymin) / (ymax - ymin) * (box[3] - box[1]))

    ticks = [ymin + (ymax - ymin) * i / 4 for i in range(5)]
    for i, label in enumerate(_tick_labels([10 ** fy if log else fy for fy in ticks])):  # y ticks and grid
        y = box[3] - (box[3] - box[1]) * i / 4
        draw.line((box[0] + 1, y, box[2] - 1, y), fill=GRID)
        draw.text((x0 + 4, y - 6), label, fill=INK, font=font)
    for i in range(3):  # x ticks: steps
        s = xmin + (xmax - xmin) * i / 2
        x = box[0] + (box[2] - box[0]) * i / 2
        draw.text((x - 10, box[3] + 4), f"{s:.0f}", fill=INK, font=font)
    draw.text((box[2] - 30, box[3] + 14), "step", fill=INK, font=font)
    if log:
        draw.text((box[2] - 60, box[1] + 3), "log scale", fill=INK, font=font)
    for color, ps in lines:
        xy = [at(s, v) for s, v in ps]
        if len(xy) == 1:
            draw.ellipse((xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2), fill=color)
        else:
            draw.line(xy, fill=color, width=2)


def curves_figure(runs: dict[str, Series], panels: Sequence[str]) -> Any:
    """A PIL image: one panel per metric, one coloured line per run, a legend of the runs below."""
    from PIL import Image, ImageDraw

    legend_h = 18 * len(runs) + 10
    img = Image.new("RGB", (PANEL_W * len(panels), PANEL_H + legend_h), BG)
    draw = ImageDraw.Draw(img)
    for i, key in enumerate(panels):
        lines = [(COLORS[j % len(COLORS)], sorted(series.get(key, []))) for j, series in enumerate(runs.values())]
        _draw_panel(draw, i * PANEL_W, 0, key, lines)
    for j, name in enumerate(runs):
        y = PANEL_H + 4 + 18 * j
        draw.line((MARGIN, y + 7, MARGIN + 24, y + 7), fill=COLORS[j % len(COLORS)], width=3)
        draw.text((MARGIN + 32, y), name, fill=INK, font=_font(12))
    return img


def short_names(names: Sequence[str], width: int) -> list[str]:
    """Policy names that fit ``width`` characters and stay apart: paths cut to their last part
    (``/work/runs/pusht[memory=/data/mem.db]`` -> ``pusht[memory=mem.db]``) where that keeps every
    name distinct, then anything longer cut in its middle, where names differ least."""
    import re

    cut = [re.sub(r"[^\s\[\]=,+]*/([^\s\[\]=,+/]+)", r"\1", n) for n in names]
    if len(set(cut)) < len(set(names)):
        cut = list(names)
    half = max(1, (width - 3) // 2)
    return [n if len(n) <= width else n[:half] + "..." + n[-(width - 3 - half):] for n in cut]


def results_figure(rows: Sequence[tuple[str, dict[str, Any]]]) -> Any:
    """A PIL image: per policy, its success rate (a bar) with the 95% Wilson CI (a whisker)."""
    from PIL import Image, ImageDraw

    font = _font(12)
    names = short_names([name for name, _ in rows], 50)
    label_w = 16 + 7 * max(len(name) for name in names)
    plot_w, row_h, top = 420, 30, 34
    img = Image.new("RGB", (label_w + plot_w + 130, top + row_h * len(rows) + 36), BG)
    draw = ImageDraw.Draw(img)
    p = rows[0][1].get("protocol", {})
    draw.text((8, 8), f"success rate, 95% CI ({'far goals' if p.get('far') else 'goal +%s steps' % p.get('goal_offset')}, "
                      f"{p.get('split', 'test')} split)", fill=INK, font=_font(13))
    x0, x1 = label_w, label_w + plot_w
    bottom = top + row_h * len(rows)
    for pct in range(0, 101, 25):
        x = x0 + plot_w * pct / 100
        draw.line((x, top, x, bottom), fill=GRID)
        draw.text((x - 10, bottom + 6), f"{pct}%", fill=INK, font=font)
    for i, (name, r) in enumerate(rows):
        s = r["summary"]
        y = top + row_h * i
        lo, hi = s["ci95"]
        color = COLORS[i % len(COLORS)]
        draw.text((8, y + 8), names[i], fill=INK, font=font)
        draw.rectangle((x0, y + 6, x0 + plot_w * s["success_rate"], y + row_h - 6), fill=color)
        xl, xh, ym = x0 + plot_w * lo, x0 + plot_w * hi, y + row_h / 2
        draw.line((xl, ym, xh, ym), fill=INK, width=2)
        draw.line((xl, ym - 6, xl, ym + 6), fill=INK, width=2)
        draw.line((xh, ym - 6, xh, ym + 6), fill=INK, width=2)
        draw.text((x1 + 8, y + 8), f"{100 * s['success_rate']:.1f}% (n={s['episodes']})", fill=INK, font=font)
    draw.line((x0, top, x0, bottom), fill=INK)
    return img


def check_png_name(path: str | Path, flag: str = "") -> None:
    """Refuse (before any work) a figure name that does not end in .png."""
    if Path(path).suffix.lower() != ".png":
        raise ConfigError(f"{flag + ' ' if flag else ''}{path}: figures are written as PNG; give a name ending in .png")


def save_png(path: str | Path, img: Any) -> Path:
    """Write a PIL image as PNG, atomically; the name must end in .png."""
    from ..atomic import atomic_write_bytes

    check_png_name(path)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
