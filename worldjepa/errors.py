"""User-facing errors.

Anything raised as a :class:`WorldJepaError` is a problem with the user's input (a file, a
flag, an environment id, a checkpoint). The CLI prints its message on one line and exits
with status 2; every other exception is a bug and keeps its traceback under ``--debug``.
"""


class WorldJepaError(Exception):
    """Bad input: the message says what is wrong and, where it can, how to fix it."""


class ConfigError(WorldJepaError, ValueError):
    """An unknown key, a value of the wrong type or out of range in a configuration."""


class DatasetError(WorldJepaError):
    """A dataset file that is missing, truncated, not HDF5, or does not fit the request."""


class CheckpointError(WorldJepaError):
    """A checkpoint that is missing, unsafe (pickle), or made for another environment."""


class EnvError(WorldJepaError):
    """An unknown environment id, an env that cannot render, or a bad action."""


class MemoryFileError(WorldJepaError):
    """A memory file that is missing, corrupt, truncated, not a worldjepa memory, or built with
    another world model (embedding size or fingerprint). Named so as not to shadow the builtin
    ``MemoryError``."""


class MemoryInputError(MemoryFileError, ValueError):
    """Entries or a map that cannot be written to a memory file as given (NaN or inf, a wrong
    shape or size); nothing was written."""


class WriteError(WorldJepaError):
    """A file could not be written (disk full, no permission, a failed flush); the file that was
    there before is left as it was, and no partial file is left behind."""


class LockError(WorldJepaError):
    """Another process is writing the same dataset or run folder (the message names its pid)."""
