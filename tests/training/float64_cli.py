"""``python tests/training/float64_cli.py ARGS``: ``worldjepa ARGS`` with torch's default dtype set to
float64, so that models are built, and compute, in float64 (what test_distributed.py compares)."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
torch.set_default_dtype(torch.float64)

from worldjepa.cli import main  # noqa: E402

sys.exit(main(sys.argv[1:]))
