"""The SQLite connection under a memory store: explicit transactions, the ``meta`` table, and
SQLite's errors turned into :class:`~worldjepa.errors.MemoryFileError` naming the file."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from ..errors import MemoryFileError
from .schema import BUSY_TIMEOUT_S


class MemoryFile:
    """An open memory file: ``path``, ``readonly``, and the transactions of its store."""

    def __init__(self, path: Path, conn: sqlite3.Connection, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = conn

    def close(self) -> None:
        """Close the file (the last writer to close folds the WAL back into it)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "MemoryFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise MemoryFileError(f"{self.path} is closed")
        return self._conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot of the file for several statements (or the open transaction's)."""
        conn = self._live()
        if conn.in_transaction:
            yield conn
            return
        try:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")
        except sqlite3.DatabaseError as e:
            raise MemoryFileError(f"{self.path}: reading failed (SQLite: {e})") from None

    @contextmanager
    def _writing(self, what: str) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is committed, or none (then the file is as it was)."""
        if self.readonly:
            raise MemoryFileError(f"{self.path} is open read-only: cannot {what}")
        conn = self._live()
        try:
            conn.execute("BEGIN IMMEDIATE")  # the write lock now: nothing changes between reading and writing
        except sqlite3.OperationalError as e:
            raise MemoryFileError(f"{self.path}: cannot {what} ({e}; another process may hold the write "
                                  f"lock for over {BUSY_TIMEOUT_S:.0f} s)") from None
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as e:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(e, sqlite3.Error):
                raise MemoryFileError(f"{self.path}: could not {what}, nothing was written (SQLite: {e})") from None
            raise

    def _meta(self, keys: tuple[str, ...]) -> dict[str, Any]:
        """Values of ``keys`` in the meta table (None where absent)."""
        marks = ", ".join("?" * len(keys))
        rows = self._live().execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
        got = {k: json.loads(v) for k, v in rows}
        return {k: got.get(k) for k in keys}

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, values: dict[str, Any]) -> None:
        conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()])
