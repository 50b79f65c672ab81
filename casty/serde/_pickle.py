"""Opt-in pickle serializer, for trusted peers only."""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Callable
from typing import IO, Any

from casty.actors.ref import ActorRef
from casty.errors import DeserializationError, MessageRefused, SerializationError

__all__ = ["PickleDecoder", "PickleEncoder", "PickleSerializer"]

logger = logging.getLogger("casty.serde")


def _ref_uid(ref: ActorRef[Any]) -> int:
    return ref.uid


class _RefPickler(pickle.Pickler):
    def __init__(
        self,
        file: IO[bytes],
        protocol: int,
        ref_to_wire: Callable[[ActorRef[Any]], str],
        incarnation_of: Callable[[ActorRef[Any]], int],
    ) -> None:
        super().__init__(file, protocol)
        self._ref_to_wire = ref_to_wire
        self._incarnation_of = incarnation_of

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, ActorRef):
            uri = self._ref_to_wire(obj)
            if not isinstance(uri, str):
                raise SerializationError(f"ref_to_wire returned {type(uri).__name__}, not str")
            incarnation = self._incarnation_of(obj)
            # the URI alone, or with the incarnation of the actor's process beside it
            return (uri, incarnation) if incarnation else uri
        return None


class _Missing:
    """Stands in for a class or function the unpickler could not find in this process, so the
    rest of the message can still be read (and the message refused on its own)."""

    def __new__(cls, *args: Any, **kwargs: Any) -> _Missing:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass


class _RefUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], resolve_ref: Callable[..., ActorRef[Any]]) -> None:
        super().__init__(file)
        self._resolve_ref = resolve_ref
        #: the first global this process could not find, as ``module:name``
        self.missing: str | None = None

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            if self.missing is None:
                self.missing = f"{module}:{name}"
            return _Missing

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, str):
            return self._resolve_ref(pid)
        if type(pid) is tuple and len(pid) == 2 and isinstance(pid[0], str) and type(pid[1]) is int:
            return self._resolve_ref(pid[0], pid[1])
        raise pickle.UnpicklingError("actor ref persistent id must be a URI, or a URI and an incarnation")


class PickleEncoder:
    """Pickles one message; actor refs still travel as URIs through ``ref_to_wire``."""

    __slots__ = ("_protocol", "_ref_to_wire", "incarnation_of")

    def __init__(self, protocol: int, ref_to_wire: Callable[[ActorRef[Any]], str]) -> None:
        self._protocol = protocol
        self._ref_to_wire = ref_to_wire
        #: the incarnation of the process a ref's actor lives in (0: unknown), sent beside its URI
        self.incarnation_of: Callable[[ActorRef[Any]], int] = _ref_uid

    def encode(self, obj: object) -> bytes:
        buf = io.BytesIO()
        try:
            _RefPickler(buf, self._protocol, self._ref_to_wire, self.incarnation_of).dump(obj)
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(f"cannot pickle {type(obj).__qualname__} message: {exc}") from exc
        return buf.getvalue()


class PickleDecoder:
    """Unpickles one message; actor refs are rebuilt through ``resolve_ref``."""

    __slots__ = ("_resolve_ref",)

    def __init__(self, resolve_ref: Callable[..., ActorRef[Any]]) -> None:
        """``resolve_ref(uri)``, or ``resolve_ref(uri, incarnation)`` for a ref that came with
        the incarnation of its process, turns a URI back into a ref."""
        self._resolve_ref = resolve_ref

    def decode(self, data: bytes) -> object:
        """One message. A message naming a class or function this process cannot find raises
        :class:`~casty.errors.MessageRefused` with what was read (a stand-in object in place
        of each missing class or function): the connection goes on without it. Bytes that do not unpickle raise
        :class:`~casty.errors.DeserializationError`."""
        unpickler = _RefUnpickler(io.BytesIO(data), self._resolve_ref)
        try:
            value = unpickler.load()
        except Exception as exc:
            raise DeserializationError(f"cannot unpickle message: {type(exc).__name__}: {exc}") from exc
        missing = unpickler.missing
        if missing is not None:
            raise MessageRefused(f"cannot unpickle message: {missing} is not a class loaded in this process", missing, value)
        return value


class PickleSerializer:
    """Serializes any picklable message with :mod:`pickle`.

    Unpickling runs code chosen by the sender: use it only between peers that trust each
    other completely. Constructing one logs a warning on the ``casty.serde`` logger.
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self._protocol = protocol
        logger.warning("PickleSerializer in use: pickle runs code from the wire; use it only between trusted peers")

    def new_encoder(self, ref_to_wire: Callable[[ActorRef[Any]], str]) -> PickleEncoder:
        """An encoder for one connection direction."""
        return PickleEncoder(self._protocol, ref_to_wire)

    def new_decoder(self, resolve_ref: Callable[[str], ActorRef[Any]]) -> PickleDecoder:
        """A decoder for one connection direction."""
        return PickleDecoder(resolve_ref)
