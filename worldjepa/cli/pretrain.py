"""``worldjepa pretrain``: placeholder until the LeJEPA pretraining lands."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("pretrain", help="(not yet implemented)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..errors import WorldJepaError

    raise WorldJepaError("'pretrain' is not implemented yet")
