"""``worldjepa plot``: the training curves of several runs in one figure (PNG)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("plot", help="plot the loss, validation and probe curves of runs in one PNG",
                       description="Read each run's metrics.jsonl (`worldjepa train` or `pretrain`) and draw one "
                                   "panel per metric, one line per run: by default train/loss, the validation "
                                   "ratio val/pred_over_copy and the probes (val/probe_r2; probe/r2, probe/acc "
                                   "for pretrain runs), those that any run logged. Drawn with Pillow.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  worldjepa plot runs/a runs/b --out curves.png\n"
                              "  worldjepa plot runs/a --metric train/pred --metric val/pred_mse_h1 --out mse.png")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories (or metrics.jsonl files)")
    p.add_argument("--out", default="curves.png", help="the figure to write, .png (default: curves.png)")
    p.add_argument("--metric", action="append", default=[], metavar="KEY",
                   help="a metric to plot, as named in metrics.jsonl (repeat for several; default: loss, "
                        "validation and probe curves)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..eval.plots import check_png_name, choose_panels, curves_figure, run_series, save_png

    check_png_name(args.out, "--out")
    runs = {name: run_series(name) for name in args.runs}
    panels = choose_panels(list(runs.values()), args.metric)
    save_png(args.out, curves_figure(runs, panels))
    print(f"{', '.join(panels)} of {len(runs)} run(s) written to {args.out}")
    return 0
