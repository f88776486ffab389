"""Progress of long work (collect, train, pretrain, eval, memory build), fit for a terminal and a log.

On a terminal (stderr is a TTY) a progress bar; otherwise (stderr redirected to a file, a CI
log, a batch job) one plain line every ``WORLDJEPA_PROGRESS_SECONDS`` seconds (default 30)
and one at the end, through :mod:`logging` (logger ``worldjepa.progress``, level INFO), with
no carriage return::

    train: 120/600 steps (20%), loss 0.1234, val 0.456, 12.3 steps/s, ETA 0:00:39
    eval runs/tworoom: 20/50 episodes (40%), success 15/20 (75%), 0.81 episodes/s, ETA 0:00:37

The command line shows these lines on stderr; from Python, ``logging.basicConfig(level=logging.INFO)``
does. ``enabled=False`` (``--no-progress`` / ``--quiet``) shows neither bar nor lines.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, TextIO

from .errors import ConfigError

logger = logging.getLogger(__name__)

SECONDS_VAR = "WORLDJEPA_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0


def seconds_between_lines() -> float:
    """Seconds between two plain progress lines: ``$WORLDJEPA_PROGRESS_SECONDS`` or 30."""
    raw = os.environ.get(SECONDS_VAR, "")
    if not raw:
        return DEFAULT_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ConfigError(f"{SECONDS_VAR}={raw!r}: expected a number of seconds >= 0")
    return value


def clock(seconds: float) -> str:
    """``3725`` -> ``"1:02:05"``."""
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class Progress:
    """``total`` units of work named ``desc``; :meth:`update` after each, with named values to show.

    ``initial`` units are already done (a resumed run): the rate and ETA count only this
    session's. ``stream`` (default ``sys.stderr``) decides bar or lines by ``isatty()``."""

    def __init__(self, total: int, desc: str, unit: str = "it", *, enabled: bool = True, initial: int = 0,
                 stream: TextIO | None = None, every: float | None = None) -> None:
        stream = sys.stderr if stream is None else stream
        self.total, self.n, self.desc, self.unit, self.enabled = int(total), int(initial), desc, unit, enabled
        self.fields: dict[str, str] = {}
        self.every = seconds_between_lines() if every is None else every
        self.t0 = self.last_line = time.monotonic()
        self.n0 = self.logged = int(initial)
        self.bar: Any = None
        if enabled and getattr(stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.n, desc=desc, unit=unit, file=stream, dynamic_ncols=True)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def set_total(self, total: int) -> None:
        """The work turned out to be ``total`` units (e.g. a --minutes budget fixed the steps)."""
        self.total = int(total)
        if self.bar is not None:
            self.bar.total = self.total

    def update(self, n: int = 1, **fields: Any) -> None:
        """``n`` more units done; ``fields`` (name -> value or text) are shown beside the count."""
        self.n += n
        self.fields.update({k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in fields.items()})
        if self.bar is not None:
            self.bar.set_postfix(self.fields, refresh=False)
            self.bar.update(n)
        elif self.enabled and time.monotonic() - self.last_line >= self.every:
            self._log()

    def line(self) -> str:
        """The plain progress line of now."""
        took = time.monotonic() - self.t0
        rate = (self.n - self.n0) / took if took > 0 else 0.0
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        shown = "".join(f", {k} {v}" for k, v in self.fields.items())
        if self.n >= self.total:
            when = f"took {clock(took)}"
        else:
            when = f"ETA {clock((self.total - self.n) / rate)}" if rate > 0 else "ETA ?"
        return f"{self.desc}: {self.n}/{self.total} {self.unit}s{pct}{shown}, {rate:.3g} {self.unit}s/s, {when}"

    def _log(self) -> None:
        logger.info("%s", self.line())
        self.last_line, self.logged = time.monotonic(), self.n

    def close(self) -> None:
        """Close the bar, or write the last line (when anything happened since the previous one)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled and self.n > self.logged:
            self._log()
