"""The configuration reference, generated from the schema.

:func:`config_reference` renders every section, key, type, default and description as
markdown; :func:`update_readme` puts it between the README's markers. Refresh the README
with ``python -m casty.config README.md``; ``tests/unit/test_readme.py`` fails while the
README's copy differs from the schema.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ._validation import Section, all_sections, hints, is_section, plain, type_name
from .schema import CastyConfig

__all__ = ["config_reference", "update_readme"]

_REF_START = "<!-- config-reference:start -->"
_REF_END = "<!-- config-reference:end -->"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _scalar_fields(cls: type[Section]) -> list[dataclasses.Field[Any]]:
    types = hints(cls)
    return [f for f in dataclasses.fields(cls) if not is_section(types[f.name])]  # type: ignore[arg-type]


def config_reference() -> str:
    """Every section, key, type, default and description of ``casty.toml`` as markdown."""
    lines: list[str] = []
    for cls in all_sections(CastyConfig):
        scalars = _scalar_fields(cls)
        if not scalars:
            continue
        types = hints(cls)
        defaults = cls()
        if lines:
            lines.append("")
        lines.append(f"### `[{cls._path}]`")
        lines.append("")
        lines.append("| Key | Type | Default | Description |")
        lines.append("| --- | --- | --- | --- |")
        for f in scalars:
            default = _toml_value(plain(getattr(defaults, f.name)))
            lines.append(
                f"| `{f.name}` | {_cell(type_name(types[f.name]))} | `{default}` | {_cell(f.metadata['doc'])} |"
            )
    return "\n".join(lines) + "\n"


def update_readme(path: str | os.PathLike[str]) -> bool:
    """Rewrite the configuration reference between the README's markers; True if it changed."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    start, end = text.index(_REF_START) + len(_REF_START), text.index(_REF_END)
    new = text[:start] + "\n" + config_reference().strip() + "\n" + text[end:]
    if new == text:
        return False
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(new)
    return True
