"""What ``worldjepa eval`` does with its results besides the table: TensorBoard scalars and a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

SCALARS = ("success_rate", "mean_final_distance", "mean_steps_to_success", "episodes")


def tensorboard_tag(name: str, result: dict[str, Any]) -> str:
    """``eval`` (``eval_far`` for far goals) plus the policy's own options: ``eval[memory=m.db]``."""
    opts = name[name.index("["):] if name.endswith("]") and "[" in name else ""
    return ("eval_far" if result["protocol"]["far"] else "eval") + opts


def log_to_tensorboard(rows: Sequence[tuple[str, str | None, dict[str, Any]]]) -> list[str]:
    """For each ``(name, run_dir, result)`` whose policy is a run: its summary under
    ``TAG/success_rate``, ``TAG/ci95_low``, ``TAG/ci95_high``, ... in ``RUN_DIR/tb``, at the step
    of the run's checkpoint (beside its training curves). Returns the run directories written."""
    from ..checkpoint import read_meta
    from ..monitor import tensorboard_writer

    written = []
    for name, run, result in rows:
        if run is None:
            continue
        s, step = result["summary"], int(read_meta(run).get("step", 0))
        tag = tensorboard_tag(name, result)
        writer = tensorboard_writer(Path(run) / "tb")
        try:
            for key in SCALARS:
                if s.get(key) is not None:
                    writer.add_scalar(f"{tag}/{key}", float(s[key]), step)
            writer.add_scalar(f"{tag}/ci95_low", float(s["ci95"][0]), step)
            writer.add_scalar(f"{tag}/ci95_high", float(s["ci95"][1]), step)
        finally:
            writer.close()
        written.append(run)
    return written


def save_results_plot(path: str | Path, rows: Sequence[tuple[str, dict[str, Any]]]) -> Path:
    """The success rate of each policy with its 95% CI, as a PNG."""
    from .plots import results_figure, save_png

    return save_png(path, results_figure(rows))
