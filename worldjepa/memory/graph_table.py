"""What is built over a memory file's entries and kept beside them: the map (nodes, that is
entry ids, directed edges between them and their weights in expected env steps, replaced or
re-weighted in one transaction each) and models learned from the entries (table ``models``: a
name, a JSON config and the weights as safetensors bytes; files written before that table
existed get it at the first model stored).

Who builds the map (landmarks, which edges, what they cost) is another module's business;
this one only persists it next to the entries it is built over. Entries that are nodes of the
persisted map are evicted last (see :mod:`.rules`).
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from ..errors import MemoryInputError
from .schema import MODELS_TABLE
from .inputs import array


def _ints(x: Any, name: str, where: Any) -> np.ndarray:
    a = array(x, None)
    if a.size and not np.issubdtype(a.dtype, np.integer):
        raise MemoryInputError(f"{where}: {name} must hold integers, got {a.dtype}")
    return a.astype(np.int64)


def _weights(x: Any, n: int, where: Any) -> np.ndarray:
    w = array(x, np.float64).reshape(-1)
    if w.shape != (n,):
        raise MemoryInputError(f"{where}: weights must have shape ({n},), got {w.shape}")
    if np.isnan(w).any() or (w < 0).any():
        raise MemoryInputError(f"{where}: weights must be >= 0 (inf: impassable), not NaN")
    return w


class GraphTable:
    """Methods of :class:`~worldjepa.memory.store.MemoryStore` for its persisted map."""

    def set_graph(self, nodes: Any, edges: Any, weights: Any, info: dict[str, Any] | None = None) -> None:
        """Persist a map over the entries, replacing any previous one.

        Args:
            nodes: (K,) int entry ids, distinct, each a stored entry.
            edges: (E, 2) int indices into ``nodes``: (from, to).
            weights: (E,) float >= 0, the expected env steps along each edge (inf: impassable).
            info: JSON-able facts about the map (how it was built).
        """
        nodes = _ints(nodes, "nodes", self.path).reshape(-1)
        edges = _ints(edges, "edges", self.path)
        edges = edges.reshape(0, 2) if edges.size == 0 else edges
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise MemoryInputError(f"{self.path}: edges must have shape (E, 2), got {edges.shape}")
        w = _weights(weights, len(edges), self.path)
        if len(np.unique(nodes)) != len(nodes):
            raise MemoryInputError(f"{self.path}: nodes must be distinct entry ids")
        if edges.size and (edges.min() < 0 or edges.max() >= len(nodes)):
            raise MemoryInputError(f"{self.path}: edges must index nodes (0 .. {len(nodes) - 1}), "
                                   f"got {edges.min()} .. {edges.max()}")
        try:
            meta = json.loads(json.dumps({"info": info or {}, "nodes": len(nodes), "edges": len(edges),
                                          "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                                         allow_nan=False))
        except (TypeError, ValueError) as e:
            raise MemoryInputError(f"{self.path}: graph info must be JSON-able ({e})") from None
        with self._writing("store the map") as conn:
            self._sync()
            missing = nodes[~np.isin(nodes, self._index.ids)]
            if len(missing):
                raise MemoryInputError(f"{self.path}: map nodes {missing[:5].tolist()} are not stored entries")
            conn.execute("DELETE FROM graph_nodes")
            conn.execute("DELETE FROM graph_edges")
            conn.executemany("INSERT INTO graph_nodes VALUES (?, ?)", enumerate(nodes.tolist()))
            conn.executemany("INSERT INTO graph_edges VALUES (?, ?, ?, ?)",
                             ((i, s, d, x) for i, ((s, d), x) in enumerate(zip(edges.tolist(), w.tolist()))))
            self._set_meta(conn, {"graph": meta})

    def graph(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]] | None:
        """The persisted map: nodes (K,) int64 entry ids, edges (E, 2) int64 indices into
        nodes, weights (E,) float64 and its info; None when no map was stored."""
        with self._reading() as conn:
            meta = self._meta(("graph",))["graph"]
            if meta is None:
                return None
            nodes = np.array([r[0] for r in conn.execute("SELECT entry FROM graph_nodes ORDER BY idx")], np.int64)
            rows = conn.execute("SELECT src, dst, weight FROM graph_edges ORDER BY idx").fetchall()
        edges = np.array([r[:2] for r in rows], np.int64).reshape(-1, 2)
        weights = np.array([r[2] for r in rows], np.float64)
        return nodes, edges, weights, meta["info"]

    def set_edge_weights(self, edges: Any, weights: Any) -> None:
        """New weights for some edges of the persisted map (e.g. a failed edge made costlier).

        Args:
            edges: (E',) int positions in the map's edge list, or (E', 2) int (from, to) node
                indices (every stored edge with that pair is updated; a pair with none is an error).
            weights: (E',) float >= 0 (inf: impassable).
        """
        e = _ints(edges, "edges", self.path)
        by_pair = e.ndim == 2
        if not (e.ndim == 1 or (by_pair and e.shape[1] == 2)):
            raise MemoryInputError(f"{self.path}: edges must have shape (E,) or (E, 2), got {e.shape}")
        w = _weights(weights, len(e), self.path)
        with self._writing("re-weight map edges") as conn:
            if self._meta(("graph",))["graph"] is None:
                raise MemoryInputError(f"{self.path} holds no map: set_graph first")
            for key, x in zip(e.tolist(), w.tolist()):
                if by_pair:
                    cur = conn.execute("UPDATE graph_edges SET weight = ? WHERE src = ? AND dst = ?", (x, *key))
                else:
                    cur = conn.execute("UPDATE graph_edges SET weight = ? WHERE idx = ?", (x, key))
                if cur.rowcount == 0:
                    raise MemoryInputError(f"{self.path}: the map has no edge {key}; nothing was changed")

    def set_model(self, name: str, config: dict[str, Any], weights: bytes) -> None:
        """Keep a model learned from the entries under ``name`` (replacing one of that name):
        ``config`` JSON-able, ``weights`` its safetensors bytes."""
        try:
            text = json.dumps(config, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise MemoryInputError(f"{self.path}: the config of model {name!r} must be JSON-able ({e})") from None
        if not isinstance(weights, (bytes, bytearray)) or not weights:
            raise MemoryInputError(f"{self.path}: the weights of model {name!r} must be non-empty bytes")
        with self._writing(f"store model {name!r}") as conn:
            conn.execute(MODELS_TABLE)
            conn.execute("INSERT OR REPLACE INTO models VALUES (?, ?, ?)", (name, text, bytes(weights)))

    def model(self, name: str) -> tuple[dict[str, Any], bytes] | None:
        """The config and weights of the model kept under ``name``; None when there is none."""
        with self._reading() as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'models'").fetchone() is None:
                return None  # a file from before the models table
            row = conn.execute("SELECT config, weights FROM models WHERE name = ?", (name,)).fetchone()
        return None if row is None else (json.loads(row[0]), bytes(row[1]))
