"""Long-term memory: what an agent saw, where and when, in one SQLite file (:class:`MemoryStore`)."""

from .store import MemoryStore

__all__ = ["MemoryStore"]
