"""Long-term memory: what was seen, where and when (a SQLite store), a map of remembered places
built from it, reasoning over that map (routes of near subgoals for the agent's MPC), and recall
by example (first sightings, their order, distinct counts)."""

from .build import build_memory, embed_episode, embed_stream, load_map
from .graph import MemoryMap, build_map, calibrate
from .reasoning import Router
from .recall import Gallery, Recall
from .store import MemoryStore

__all__ = ["Gallery", "MemoryMap", "MemoryStore", "Recall", "Router", "build_map", "build_memory", "calibrate", "embed_episode",
           "embed_stream", "load_map"]
