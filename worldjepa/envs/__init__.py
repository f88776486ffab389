"""Built-in environments (placeholder until the environment suite lands)."""

BUILTIN_IDS: tuple[str, ...] = ()


def register() -> None:
    """Register the built-in environments with Gymnasium (idempotent)."""
