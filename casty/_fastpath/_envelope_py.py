"""Envelopes in: frame bodies to (target path, message), handed on in order (pure twin of
``_envelope_c``).

An envelope is ``[target, message]``. ``target`` is ``[id, path]`` the first time a path is
used on a connection (ids count up from 0 per connection), the bare ``id`` afterwards, and the
full path (a str) for a short-lived target that is never given an id.

:meth:`EnvelopeReader.dispatch` decodes each body with the connection's decoder, resolves the
target and calls ``deliver(path, message)``; a message for ``special_path`` or of
``special_type`` goes to ``on_special(path, message)`` instead, which returns False to stop
reading (it has closed the connection). A body that is not a well-formed envelope raises
:class:`~casty.errors.DeserializationError` and nothing after it is delivered.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casty.errors import DeserializationError

__all__ = ["EnvelopeReader"]


class EnvelopeReader:
    """Reads the envelopes of one connection direction and hands each one on."""

    __slots__ = ("_decode", "_deliver", "_on_special", "_special_path", "_special_type", "closed", "paths")

    def __init__(
        self,
        decode: Callable[[bytes], object],
        deliver: Callable[[str, object], object],
        on_special: Callable[[str, object], bool],
        special_path: str,
        special_type: type,
    ) -> None:
        if not isinstance(special_path, str) or not isinstance(special_type, type):
            raise TypeError("special_path must be a str and special_type a class")
        self._decode = decode
        self._deliver = deliver
        self._on_special = on_special
        self._special_path = special_path
        self._special_type = special_type
        #: the paths the peer defined on this connection, by id
        self.paths: list[str] = []
        #: set once the connection is closing: nothing more is read
        self.closed = False

    def target(self, target: Any) -> str:
        """The path an envelope's target names; defines it when it is ``[id, path]``."""
        if type(target) is int:
            paths = self.paths
            if target < 0 or target >= len(paths):
                raise DeserializationError(f"unknown path id {target}")
            return paths[target]
        if type(target) is str:
            return target
        if type(target) is not list or len(target) != 2:
            raise DeserializationError("an envelope target must be an id, a path or [id, path]")
        ident, path = target
        if type(ident) is not int or ident != len(self.paths) or type(path) is not str:
            raise DeserializationError("out-of-order path definition")
        self.paths.append(path)
        return path

    def dispatch(self, bodies: list[bytes]) -> int:
        """Decode and hand on every body in order; returns how many were handed on (fewer than
        ``len(bodies)`` when a special message stopped reading or the reader was closed)."""
        if type(bodies) is not list:
            raise TypeError("bodies must be a list")
        decode = self._decode
        deliver = self._deliver
        special_path = self._special_path
        special_type = self._special_type
        done = 0
        for body in bodies:
            if self.closed:
                break
            envelope = decode(body)
            if type(envelope) is not list or len(envelope) != 2:
                raise DeserializationError("an envelope must be [target, message]")
            path = self.target(envelope[0])
            msg = envelope[1]
            done += 1
            if type(msg) is special_type or path == special_path:
                if not self._on_special(path, msg):
                    break
            else:
                deliver(path, msg)
        return done
