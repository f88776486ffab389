"""Action-free forecasting on Balls: the world model against copy-last, a mean and a pixel predictor.

Given an action-free world model (``worldjepa train --action-free``) and a pixel-space
predictor trained on the same recordings (``worldjepa train --pixel-space --action-free``),
forecast ``--horizon`` model steps from ``history`` context frames of held-out (test split)
episodes and score every forecast in the world model's embedding space
(:mod:`worldjepa.physics.forecast`): the world model's own forecast, copy-last, the mean
embedding, and the pixel predictor's frames encoded by the world model's encoder; the pixel
predictor is also scored in pixels against copying the last frame. Prints a markdown table
(with the parameter counts and the 95% bootstrap intervals over episodes of each baseline's
margin) and writes ``forecast.json`` to ``--out``. Example (docs/physics.md#forecasting):

    python benchmarks/bench_forecast.py --run runs/balls_af --pixel-run runs/balls_pix --data data/balls.h5
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True, help="an action-free world model run")
    ap.add_argument("--pixel-run", default="", help="a pixel-space predictor run (train --pixel-space)")
    ap.add_argument("--data", required=True, help="the dataset both were trained on (its test split is used)")
    ap.add_argument("--horizon", type=int, default=10, help="model steps forecast")
    ap.add_argument("--per-episode", type=int, default=8, help="clips per test episode (evenly spaced starts)")
    ap.add_argument("--out", default="", help="directory for forecast.json ('' = RUN/forecast)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch

    from worldjepa.physics.forecast import forecast_clips, forecast_scores, format_forecast_table
    from worldjepa.pixel_model import load_pixel_model
    from worldjepa.world_model import load_world_model

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    model, meta = load_world_model(args.run)
    pixel, pmeta = load_pixel_model(args.pixel_run) if args.pixel_run else (None, {})
    clips = forecast_clips(args.data, int(model.frameskip), int(model.history), args.horizon, args.per_episode)
    result = forecast_scores(model, clips, pixel=pixel)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    result.update(run=args.run, pixel_run=args.pixel_run, data=args.data, frameskip=int(model.frameskip),
                  history=int(model.history), params={"world_model": count(model),
                                                      **({"pixel": count(pixel)} if pixel is not None else {})},
                  steps={"world_model": meta.get("step"), **({"pixel": pmeta.get("step")} if pixel else {})},
                  seconds=round(time.perf_counter() - t0, 1),
                  date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))
    out = Path(args.out or Path(args.run) / "forecast")
    out.mkdir(parents=True, exist_ok=True)
    (out / "forecast.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{meta['env_id']}: {result['clips']} clips of {result['episodes']} test episodes, context "
          f"{result['history']} frames at frame-skip {result['frameskip']}; parameters {result['params']}, "
          f"training steps {result['steps']}; {result['seconds']} s, {result['date']}")
    print(format_forecast_table(result))
    for name, cis in result["ci"].items():
        lo = ", ".join(f"{a:+.4f}..{b:+.4f}" for a, b in cis)
        print(f"{name} minus model, 95% interval per horizon: {lo}")
    beats = {name: all(a > 0 for a, _ in cis) for name, cis in result["ci"].items()}
    print("the model beats, at every horizon (interval above 0): " + ", ".join(f"{k} {v}" for k, v in beats.items()))


if __name__ == "__main__":
    main()
