"""How a knob is declared: its value constraints, and its description read from the schema.

A knob is a field of a section dataclass with its default, an optional
``metadata=limits(...)`` of value constraints, and the attribute docstring written under it
(the same docstring editors and documentation tools show). That docstring is the knob's one
description: :func:`describe_knobs` copies it into the field metadata as ``"doc"``, where the
reference generator (``_reference``) reads it.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import sys
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

from ._validation import Section, all_sections

__all__ = ["Check", "at_least_one", "describe_knobs", "limits", "non_negative", "port_number", "positive"]

Check = Callable[[Any], "str | None"]
"""A value constraint: returns an error text for a bad value, or None."""


def positive(value: Any) -> str | None:
    return None if value > 0 else f"must be positive, got {value!r}"


def non_negative(value: Any) -> str | None:
    return None if value >= 0 else f"must not be negative, got {value!r}"


def port_number(value: Any) -> str | None:
    return None if 0 <= value <= 65535 else f"must be a port in 0..65535, got {value!r}"


def at_least_one(value: Any) -> str | None:
    return None if value >= 1 else f"must be at least 1, got {value!r}"


def limits(*checks: Check) -> dict[str, Any]:
    """Field metadata: the knob's value constraints, checked after its type."""
    return {"checks": checks}


def _attribute_docstrings(source: str) -> dict[tuple[str, str], str]:
    """``(class name, field name) -> docstring`` for every docstring written under an
    annotated field of a top-level class, whitespace folded to single spaces."""
    found: dict[tuple[str, str], str] = {}
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        for stmt, following in itertools.pairwise(node.body):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                found[(node.name, stmt.target.id)] = " ".join(following.value.value.split())
    return found


def describe_knobs(root: type[Section]) -> None:
    """Give every field of ``root`` and of its nested sections its ``"doc"`` metadata, read
    from the docstring written under the field in its module's source.

    A field without a docstring is a TypeError: every knob is described. When the source is
    not available (a distribution without ``.py`` files) the descriptions are left empty;
    validation does not need them, only the reference does.
    """
    sources: dict[str, dict[tuple[str, str], str] | None] = {}
    for cls in all_sections(root):
        module = cls.__module__
        if module not in sources:
            try:
                sources[module] = _attribute_docstrings(inspect.getsource(sys.modules[module]))
            except (OSError, TypeError):
                sources[module] = None
        docs = sources[module]
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            doc = "" if docs is None else docs.get((cls.__name__, f.name))
            if doc is None:
                raise TypeError(f"{cls.__name__}.{f.name}: a configuration knob needs a docstring under it")
            f.metadata = MappingProxyType({**f.metadata, "doc": doc})
