"""Stopping cleanly on SIGINT, SIGTERM and SIGHUP: finish the unit of work, save, exit 128 + signal.

A long command (``collect``, ``train``, ``pretrain``) runs its loop inside :class:`StopSignals`:
the first signal only sets :attr:`StopSignals.requested`; the loop checks it between units of
work (an episode, an optimiser step), saves what is complete and raises :class:`Interrupted`,
which the CLI turns into exit status ``128 + signal`` (130 for Ctrl-C, 143 for SIGTERM, 129
for SIGHUP). A second signal interrupts at once (a :class:`Interrupted` raised wherever the
program is; what was saved before stays).
"""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__ = ["Interrupted", "StopSignals", "STOP_SIGNALS"]

STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class Interrupted(KeyboardInterrupt):
    """The command stopped on a signal (``signum``); ``saved`` says what was kept."""

    def __init__(self, signum: int = signal.SIGINT, saved: str = "") -> None:
        super().__init__(signum, saved)
        self.signum, self.saved = int(signum), saved

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    def __str__(self) -> str:
        return f"stopped by {self.name}" + (f"; {self.saved}" if self.saved else "")


class StopSignals:
    """Within ``with StopSignals() as stop``: the first stop signal sets ``stop.requested`` (its
    number); a second raises :class:`Interrupted` at once. Handlers are installed only in the
    main thread, and the previous ones are restored on exit."""

    def __init__(self) -> None:
        self.requested = 0
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise Interrupted(signum)  # whoever catches it says what was kept
        self.requested = signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in STOP_SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old = {}

    def raise_if_requested(self, saved: str = "") -> None:
        if self.requested:
            raise Interrupted(self.requested, saved)
