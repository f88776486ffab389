"""The ``worldjepa`` command line: one small module per command group.

Every command takes its options as flags, from a YAML file (``--config FILE``) and as
``key=value`` overrides, in that order of increasing precedence; bad input ends with a
one-line error and exit status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Sequence

COMMAND_MODULES = ("data", "pretrain", "train", "plan", "eval", "compare", "memory", "physics", "plot")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    from .._version import __version__

    parser = argparse.ArgumentParser(
        prog="worldjepa",
        description="JEPA world models: collect recordings, learn physics in embedding space, plan toward goal images.",
        epilog="Run `worldjepa COMMAND --help` for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"worldjepa {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f".{name}", __name__).register(sub)
    return parser


class _Stdout:
    """Standard output that outlives its reader. Once the reader has gone (``worldjepa memory
    events mem.db | head``), what is printed later is dropped and the command goes on to the end:
    an evaluation still writes its results file; no traceback, the command's own exit status."""

    def __init__(self, stream: Any) -> None:
        self._stream, self.gone = stream, False

    def _drop(self) -> None:
        self.gone = True
        try:  # the file descriptor too, so that nothing buffered fails again at exit
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    saved = sys.stdout
    if saved is not None and not isinstance(saved, _Stdout):
        sys.stdout = _Stdout(saved)
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        sys.stdout = saved


def _main(argv: list[str]) -> int:
    debug = "--debug" in argv
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, format="%(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from ..errors import WorldJepaError

    try:
        return int(args.func(args) or 0)
    except WorldJepaError as e:
        if debug:
            raise
        print(f"worldjepa {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # worldjepa.signals.Interrupted says which signal and what was saved
        signum = getattr(e, "signum", 2)
        print(f"worldjepa {args.command}: {e if getattr(e, 'signum', None) else 'interrupted'}", file=sys.stderr)
        return 128 + signum
    except MemoryError:
        if debug:
            raise
        print(f"worldjepa {args.command}: error: out of memory; use smaller sizes (batch, model, samples)", file=sys.stderr)
        return 2
    except Exception as e:  # a bug, not bad input: keep it to one line unless --debug
        if debug:
            raise
        if isinstance(e, RuntimeError) and "can't allocate memory" in str(e):  # torch's CPU allocator
            print(f"worldjepa {args.command}: error: out of memory ({str(e).splitlines()[0][:200]}); use smaller "
                  "sizes", file=sys.stderr)
            return 2
        print(f"worldjepa {args.command}: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
