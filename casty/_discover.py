"""Finding a project's ``casty.toml``: from a directory (the working one by default) upwards."""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_FILE_NAME", "discover_config"]

CONFIG_FILE_NAME = "casty.toml"


def discover_config(start: str | Path | None = None) -> Path | None:
    """The path of the nearest ``casty.toml`` in ``start`` (default: the working directory) or one
    of its parents, or None when there is none."""
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    if here.is_file():
        here = here.parent
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    return None
