"""The envelope reader: both implementations resolve targets and hand messages on alike."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casty._fastpath import _envelope_py
from casty.errors import DeserializationError

pytestmark = pytest.mark.timeout(60)


def _compiled() -> ModuleType | None:
    try:
        return importlib.import_module("casty._fastpath._envelope_c")
    except ImportError:
        return None


IMPLS = [
    pytest.param(_envelope_py, id="py"),
    pytest.param(
        _compiled(), id="c", marks=pytest.mark.skipif(_compiled() is None, reason="envelope reader not compiled")
    ),
]
BOTH = [m for m in (_envelope_py, _compiled()) if m is not None]

CONTROL = "/system/remote"


class Special:
    def __init__(self, stop: bool = False) -> None:
        self.stop = stop

    def __repr__(self) -> str:
        return f"Special(stop={self.stop})"


class Recorder:
    def __init__(self, module: ModuleType, decode: Any = None) -> None:
        self.events: list[tuple[str, str, Any]] = []
        self.reader = module.EnvelopeReader(
            decode if decode is not None else (lambda body: msgpack.unpackb(body)),
            lambda path, msg: self.events.append(("deliver", path, msg)),
            self.special,
            CONTROL,
            Special,
        )

    def special(self, path: str, msg: Any) -> bool:
        self.events.append(("special", path, repr(msg)))
        return not (isinstance(msg, Special) and msg.stop)

    def run(self, bodies: list[Any]) -> tuple[Any, list[Any], list[str]]:
        try:
            outcome: Any = self.reader.dispatch(bodies)
        except Exception as exc:  # the outcome is compared between the twins
            outcome = (type(exc), str(exc))
        return outcome, self.events, list(self.reader.paths)


@pytest.mark.parametrize("module", IMPLS)
def test_paths_defined_then_used_by_id(module: ModuleType) -> None:
    rec = Recorder(module)
    bodies = [
        msgpack.packb([[0, "/user/a"], 1]),
        msgpack.packb([0, 2]),
        msgpack.packb([[1, "/user/b"], "x"]),
        msgpack.packb([1, None]),
        msgpack.packb(["/temp/7", 3]),
        msgpack.packb([0, [4]]),
    ]
    assert rec.reader.dispatch(bodies) == 6
    assert rec.events == [
        ("deliver", "/user/a", 1),
        ("deliver", "/user/a", 2),
        ("deliver", "/user/b", "x"),
        ("deliver", "/user/b", None),
        ("deliver", "/temp/7", 3),
        ("deliver", "/user/a", [4]),
    ]
    assert rec.reader.paths == ["/user/a", "/user/b"]


@pytest.mark.parametrize("module", IMPLS)
@pytest.mark.parametrize(
    "envelope",
    [
        [5, "x"],  # an id never defined
        [-1, "x"],
        [[1, "/user/a"], "x"],  # defined out of order
        [[0, 5], "x"],
        [["0", "/user/a"], "x"],
        [[0, "/user/a", 1], "x"],
        [True, "x"],
        [1.0, "x"],
        [None, "x"],
        ["/user/a"],
        ["/user/a", 1, 2],
        "not a list",
        {"t": 1},
    ],
)
def test_malformed_envelopes_refused(module: ModuleType, envelope: Any) -> None:
    rec = Recorder(module)
    with pytest.raises(DeserializationError):
        rec.reader.dispatch([msgpack.packb(["/user/ok", 0]), msgpack.packb(envelope), msgpack.packb(["/user/ok", 1])])
    assert rec.events == [("deliver", "/user/ok", 0)]  # nothing after the refused body


@pytest.mark.parametrize("module", IMPLS)
def test_special_messages_and_stopping(module: ModuleType) -> None:
    rec = Recorder(module, decode=lambda body: body)
    bodies = [
        ["/user/a", 1],
        [CONTROL, "ping"],
        ["/user/a", Special()],
        ["/user/b", Special(stop=True)],
        ["/user/a", 2],
    ]
    assert rec.reader.dispatch(bodies) == 4
    assert rec.events == [
        ("deliver", "/user/a", 1),
        ("special", CONTROL, "'ping'"),
        ("special", "/user/a", "Special(stop=False)"),
        ("special", "/user/b", "Special(stop=True)"),
    ]
    rec.reader.closed = True
    assert rec.reader.dispatch([["/user/a", 3]]) == 0
    assert len(rec.events) == 4


@pytest.mark.parametrize("module", IMPLS)
def test_decoder_errors_pass_through(module: ModuleType) -> None:
    def decode(body: bytes) -> Any:
        raise DeserializationError("bad body")

    rec = Recorder(module, decode=decode)
    with pytest.raises(DeserializationError, match="bad body"):
        rec.reader.dispatch([b"x"])
    with pytest.raises(TypeError):
        module.EnvelopeReader(decode, print, print, 5, Special)
    with pytest.raises(TypeError):
        rec.reader.dispatch((b"x",))


targets = st.one_of(
    st.integers(-2, 6),
    st.sampled_from(["/user/a", "/temp/1", CONTROL]),
    st.lists(st.one_of(st.integers(-1, 4), st.text(max_size=3)), min_size=0, max_size=3),
    st.none(),
    st.booleans(),
)
messages = st.one_of(st.integers(), st.text(max_size=4), st.none(), st.builds(Special, st.booleans()))
envelopes = st.one_of(
    st.lists(st.one_of(targets, messages), min_size=0, max_size=3), st.tuples(targets, messages).map(list)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(envelopes, max_size=6), max_size=4))
def test_twins_agree(batches: list[list[Any]]) -> None:
    results = []
    for module in BOTH:
        rec = Recorder(module, decode=lambda body: body)
        outcomes = [rec.run(batch)[0] for batch in batches]
        results.append((outcomes, rec.events, list(rec.reader.paths)))
    assert all(r == results[0] for r in results), results
