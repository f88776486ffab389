"""Long-term memory: what was seen, where and when (a SQLite store), a map of remembered places
built from it, and reasoning over that map (routes of near subgoals for the agent's MPC)."""

from .build import build_memory, embed_episode, load_map
from .graph import MemoryMap, build_map, calibrate
from .reasoning import Router
from .store import MemoryStore

__all__ = ["MemoryMap", "MemoryStore", "Router", "build_map", "build_memory", "calibrate", "embed_episode", "load_map"]
