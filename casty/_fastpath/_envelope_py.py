"""Envelopes in and out: frame bodies to (target path, message) handed on in order, and queued
(path, message) pairs to frames (pure twin of ``_envelope_c``).

An envelope is ``[target, message]``. ``target`` is ``[id, path]`` the first time a path is
used on a connection (ids count up from 0 per connection), the bare ``id`` afterwards, and the
full path (a str) for a short-lived target that is never given an id.

:meth:`EnvelopeReader.dispatch` decodes each body with the connection's decoder, resolves the
target and calls ``deliver(path, message)``; a message for ``special_path`` or of
``special_type`` goes to ``on_special(path, message)`` instead, which returns False to stop
reading (it has closed the connection). A target path holding ``"\x00"`` (one that names the
incarnation of its process) is passed through ``marked(path)``, which gives the path to use,
except that a path ending in ``own_mark`` (this process's own incarnation mark) with no other
``"\x00"`` is taken without the call, the mark dropped; a message for a path in the set ``gone`` goes to ``on_special`` too. A body that is not a
well-formed envelope raises :class:`~casty.errors.DeserializationError` and nothing after it
is delivered; ``taken`` then tells how many bodies were taken, the failing one included.

:meth:`EnvelopeWriter.write_queue` is the other direction: it takes (path, message) pairs from
a queue, encodes each envelope, adds it to the connection's frame encoder and hands the
framed bytes to ``write`` (at most ``chunk`` bytes and more at once), until the queue is empty
or the writer is paused; ``bytes_written`` and ``writes`` count what it handed over. A message
that cannot be encoded goes to ``on_error(path, message, error)`` and is not sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from casty.errors import DeserializationError, FrameTooLarge, SerializationError

__all__ = ["EnvelopeReader", "EnvelopeWriter"]


class EnvelopeReader:
    """Reads the envelopes of one connection direction and hands each one on."""

    __slots__ = (
        "_decode",
        "_deliver",
        "_gone",
        "_marked",
        "_on_special",
        "_own_mark",
        "_special_path",
        "_special_type",
        "closed",
        "paths",
        "taken",
    )

    def __init__(
        self,
        decode: Callable[[bytes], object],
        deliver: Callable[[str, object], object],
        on_special: Callable[[str, object], bool],
        special_path: str,
        special_type: type,
        marked: Callable[[str], str] | None = None,
        gone: set[str] | None = None,
        own_mark: str | None = None,
    ) -> None:
        if not isinstance(special_path, str) or not isinstance(special_type, type):
            raise TypeError("special_path must be a str and special_type a class")
        if own_mark is not None and (type(own_mark) is not str or not own_mark.startswith("\x00")):
            raise TypeError("own_mark must be None or a str starting with NUL")
        self._decode = decode
        self._deliver = deliver
        self._on_special = on_special
        self._special_path = special_path
        self._special_type = special_type
        self._marked = marked
        self._gone = gone
        self._own_mark = own_mark
        #: the paths the peer defined on this connection, by id
        self.paths: list[str] = []
        #: set once the connection is closing: nothing more is read
        self.closed = False
        #: bodies taken by the last ``dispatch``, the one that raised included
        self.taken = 0

    def target(self, target: Any) -> str:
        """The path an envelope's target names; defines it when it is ``[id, path]``."""
        if type(target) is int:
            paths = self.paths
            if target < 0 or target >= len(paths):
                raise DeserializationError(f"unknown path id {target}")
            return paths[target]
        if type(target) is str:
            if self._marked is not None and "\x00" in target:
                return self._unmark(target)
            return target
        if type(target) is not list or len(target) != 2:
            raise DeserializationError("an envelope target must be an id, a path or [id, path]")
        ident, path = target
        if type(ident) is not int or ident != len(self.paths) or type(path) is not str:
            raise DeserializationError("out-of-order path definition")
        if self._marked is not None and "\x00" in path:
            path = self._unmark(path)
        self.paths.append(path)
        return path

    def _unmark(self, key: str) -> str:
        mark = self._own_mark
        if mark is not None and key.endswith(mark):
            path = key[: -len(mark)]
            if "\x00" not in path:
                return path
        assert self._marked is not None
        return self._marked(key)

    def dispatch(self, bodies: list[bytes]) -> int:
        """Decode and hand on every body in order; returns how many were handed on (fewer than
        ``len(bodies)`` when a special message stopped reading or the reader was closed)."""
        if type(bodies) is not list:
            raise TypeError("bodies must be a list")
        decode = self._decode
        deliver = self._deliver
        special_path = self._special_path
        special_type = self._special_type
        gone = self._gone
        done = 0
        self.taken = 0
        for body in bodies:
            if self.closed:
                break
            self.taken += 1
            envelope = decode(body)
            if type(envelope) is not list or len(envelope) != 2:
                raise DeserializationError("an envelope must be [target, message]")
            path = self.target(envelope[0])
            msg = envelope[1]
            done += 1
            if type(msg) is special_type or path == special_path or (gone and path in gone):
                if not self._on_special(path, msg):
                    break
            else:
                deliver(path, msg)
        return done


class EnvelopeWriter:
    """Writes the envelopes of one connection direction: ``[target, message]`` per message."""

    __slots__ = ("_chunk", "_encode", "_frames", "_on_error", "bytes_written", "paths", "paused", "write", "writes")

    def __init__(
        self,
        encode: Callable[[object], bytes],
        frames: Any,
        write: Callable[[bytes], object],
        on_error: Callable[[str, object, Exception], object],
        chunk: int,
    ) -> None:
        if type(chunk) is not int or chunk < 1:
            raise ValueError("chunk must be a positive int")
        self._encode = encode
        self._frames = frames
        #: where framed bytes go (the socket's ``write``)
        self.write = write
        self._on_error = on_error
        self._chunk = chunk
        #: bytes handed to ``write`` so far, and the calls that handed them
        self.bytes_written = 0
        self.writes = 0
        #: the paths defined on this connection so far, with their ids
        self.paths: dict[str, int] = {}
        #: while True (the socket's buffer is full), queued messages wait
        self.paused = False

    def write_queue(self, queue: Any) -> int:
        """Encode and write queued (path, message) pairs until the queue is empty or the writer
        is paused; returns how many were taken from the queue."""
        encode = self._encode
        frames = self._frames
        add = frames.add
        paths = self.paths
        chunk = self._chunk
        taken = 0
        pending = frames.pending_bytes
        while queue and not self.paused:
            path, msg = queue.popleft()
            taken += 1
            ident = paths.get(path)
            target: Any
            if ident is not None:
                target = ident
            elif path.startswith("/temp/"):
                target = path  # short-lived (an ask's reply): sent in full, not given an id
            else:
                target = [len(paths), path]
            try:
                pending = add(encode([target, msg]))
            except (SerializationError, FrameTooLarge) as exc:
                self._on_error(path, msg, exc)
                continue
            if ident is None and type(target) is list:
                paths[path] = len(paths)
            if pending >= chunk:
                self._put(frames.take())
                pending = 0
        if pending:
            self._put(frames.take())
        return taken

    def _put(self, data: bytes) -> None:
        self.bytes_written += len(data)
        self.writes += 1
        self.write(data)
