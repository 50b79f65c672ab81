"""Vector clocks of the membership gossip: ``(member key, counter)`` pairs, sorted by key.

A clock is a plain tuple so it travels inside a message. :func:`merge_versions` is the
pointwise maximum (the join); :func:`compare_versions` tells whether one clock happened
before another, after it, is the same, or is concurrent with it.

Wire names: a record's type travels as ``module:qualname``.  The membership types were
first defined in ``casty.cluster._membership``, so they keep that module name (``__module__``)
and that module re-exports them: peers of any version decode them alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

__all__ = ["Version", "VectorOrder", "compare_versions", "merge_versions"]

_WIRE_MODULE = "casty.cluster._membership"

Version = tuple[tuple[str, int], ...]
"""A vector clock: ``(member key, counter)`` pairs sorted by key, missing keys counting as 0."""


class VectorOrder(Enum):
    """How one vector clock relates to another."""

    BEFORE = "before"
    AFTER = "after"
    SAME = "same"
    CONCURRENT = "concurrent"


def compare_versions(a: Iterable[tuple[str, int]], b: Iterable[tuple[str, int]]) -> VectorOrder:
    """Compare clock ``a`` with clock ``b`` (missing entries count as 0).

    ``BEFORE`` means ``a`` happened before ``b`` (``b`` has seen everything ``a`` has)."""
    left = dict(a)
    right = dict(b)
    a_bigger = b_bigger = False
    for key in left.keys() | right.keys():
        x = left.get(key, 0)
        y = right.get(key, 0)
        if x > y:
            a_bigger = True
        elif y > x:
            b_bigger = True
        if a_bigger and b_bigger:
            return VectorOrder.CONCURRENT
    if a_bigger:
        return VectorOrder.AFTER
    if b_bigger:
        return VectorOrder.BEFORE
    return VectorOrder.SAME


def merge_versions(*clocks: Iterable[tuple[str, int]]) -> Version:
    """Pointwise maximum of vector clocks, sorted by key."""
    out: dict[str, int] = {}
    for clock in clocks:
        for key, counter in clock:
            if counter > out.get(key, 0):
                out[key] = counter
    return tuple(sorted(out.items()))


VectorOrder.__module__ = _WIRE_MODULE  # the wire name, see the module docstring
