"""The stream protocol: plain actor messages, serializable like any other message.

A stream runs between one producer actor and one subscribed consumer actor:

* ``Subscribe`` (consumer → producer) asks for the stream, with the consumer's first demand;
  the producer answers ``Subscribed`` or, when it already has a subscriber,
  ``SubscriptionRefused``.  A plain ``Subscribe(consumer, demand=n)`` (any hand-written
  subscriber) gets at most what it demanded, each element once, in order; its demand is its
  acknowledgement, so the producer keeps nothing for resending (an element lost with a
  connection stays lost).  casty's own consumer subscribes with ``reliable=True`` and gets the
  acknowledged, resending protocol below.
* ``StreamElement`` (producer → consumer) carries one element and its sequence number
  (0, 1, 2, ...).  The producer never sends a sequence number the consumer did not ask for.
* ``StreamDemand`` (consumer → producer) grants more elements.  Demand from casty's own
  consumer carries cumulative counters (``requested_total``, ``received_total``), so a lost
  or duplicated demand message is harmless and every demand also acknowledges what arrived;
  a plain ``StreamDemand(n)`` adds ``n`` elements of demand.  ``resend=True`` asks the
  producer to send again every element from ``received_total`` on.
* ``StreamCompleted`` / ``StreamError`` (producer → consumer) end the stream and say how many
  elements were sent in total; the consumer delivers them after that many elements arrived.
* ``StreamCancel`` (consumer → producer) ends the stream from the consuming side; it is also
  how a consumer acknowledges a completion or failure.

``Push``, ``CompleteStream`` and ``FailStream`` feed a producer by message instead of through
its :class:`~casty.streams.SinkRef`.  ``GetSink`` / ``GetSource`` hand out the local
:class:`~casty.streams.SinkRef` / :class:`~casty.streams.SourceRef` of a producer / consumer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from casty.actors.ref import ActorRef
from casty.serde import RecordRun

if TYPE_CHECKING:
    from casty.streams._consumer import SourceRef
    from casty.streams._producer import SinkRef

__all__ = [
    "CompleteStream",
    "FailStream",
    "GetSink",
    "GetSource",
    "Push",
    "StreamCancel",
    "StreamCompleted",
    "StreamConsumerMsg",
    "StreamDemand",
    "StreamElement",
    "StreamError",
    "StreamProducerMsg",
    "Subscribe",
    "Subscribed",
    "SubscriptionRefused",
]

T = TypeVar("T")


# -- consumer → producer ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True, init=False)
class Subscribe(Generic[T]):
    """Subscribe ``consumer`` to the producer's stream, granting ``demand`` elements.

    ``Subscribe(consumer, demand=n)`` is the plain protocol any actor may speak: the producer
    sends at most the elements demanded (``demand`` here, then each ``StreamDemand(n)``) as
    ``StreamElement`` messages, once each and in order, and ``StreamCompleted`` /
    ``StreamError`` at the end, then stops; demand is the acknowledgement, nothing is kept
    for resending (an element lost with a connection is not sent again).  casty's own consumer
    sets ``reliable=True``: its demand is cumulative (``demand`` is then the total granted so
    far, also readable as ``requested_total``), it acknowledges what arrived and the producer
    resends after a gap or a lost connection.

    Sending it again from the same consumer is harmless (the producer confirms again and
    grants no extra demand to a plain subscriber); a producer that already streams to
    another consumer answers ``SubscriptionRefused``.  ``requested_total=`` is accepted as
    another name for ``demand``.
    """

    consumer: ActorRef[StreamConsumerMsg[T]]
    demand: int
    batch: int
    """Largest run of elements the consumer accepts in one ``StreamElements`` message (0: send
    every element as its own ``StreamElement``); honoured for reliable subscribers only."""
    reliable: bool
    """True for casty's own consumer: cumulative demand, acknowledgements and resends."""

    def __init__(
        self,
        consumer: ActorRef[StreamConsumerMsg[T]],
        demand: int = 0,
        batch: int = 0,
        reliable: bool = False,
        *,
        requested_total: int | None = None,
    ) -> None:
        if requested_total is not None:
            if demand not in (0, requested_total):
                raise TypeError("Subscribe takes demand= or requested_total= (the same value), not both")
            demand = requested_total
        object.__setattr__(self, "consumer", consumer)
        object.__setattr__(self, "demand", demand)
        object.__setattr__(self, "batch", batch)
        object.__setattr__(self, "reliable", reliable)

    @property
    def requested_total(self) -> int:
        """The demand this subscription grants (the name casty's consumer uses for it)."""
        return self.demand


@dataclass(frozen=True, slots=True)
class StreamDemand:
    """Grant the producer more elements.

    Plain form, ``StreamDemand(n)``: ``n`` more elements; ``n`` must be positive (a demand
    of ``n <= 0`` fails the stream).  Cumulative form (``requested_total >= 0``): the
    consumer granted ``requested_total`` elements since the start and received the first
    ``received_total`` of them; ``n`` then only says how much this message added (0 for a
    pure acknowledgement).  ``resend=True`` asks for every element from ``received_total``
    on to be sent again (after a gap, or when nothing arrived for a while).
    """

    n: int
    requested_total: int = -1
    received_total: int = -1
    resend: bool = False


@dataclass(frozen=True, slots=True)
class StreamCancel:
    """The consumer ends the stream (or acknowledges its completion); the producer stops."""

    reason: str = "cancelled by the consumer"


# -- producer → consumer ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Subscribed:
    """The producer accepted the subscription."""

    producer: ActorRef[Any]


@dataclass(frozen=True, slots=True)
class SubscriptionRefused:
    """The producer refused the subscription (it already streams to another consumer)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StreamElement(Generic[T]):
    """One element of the stream and its sequence number (``seq=-1``: unnumbered, taken in arrival order)."""

    element: T
    seq: int = -1

    def split_for_frame(self, recipient: ActorRef[Any], size: int, limit: int) -> list[Any] | None:
        """Called by the transport when this element does not fit in one frame: the producer
        that sent it fails the stream with ``ElementTooLarge`` (returns [] when one did)."""
        from casty.streams._producer import element_too_large

        return [] if element_too_large(recipient, self.seq, self.element, size, limit) else None


@dataclass(frozen=True, slots=True)
class StreamElements(Generic[T]):
    """A run of consecutive elements, numbered from ``first_seq`` (sent only to consumers that
    asked for batches in their ``Subscribe``). It is one message on the wire instead of
    ``len(elements)``: the same protocol, with the per-message costs paid once per run."""

    first_seq: int
    elements: list[T]

    def split_for_frame(self, recipient: ActorRef[Any], size: int, limit: int) -> list[Any] | None:
        """Called by the transport when this run does not fit in one frame (``size`` bytes
        encoded, over ``limit``): the runs to send instead, each small enough at the average
        element size, with their sequence numbers. A single element that does not fit fails
        the stream (see :class:`~casty.ElementTooLarge`)."""
        from casty.streams._producer import element_too_large, limit_run_length

        elements = self.elements
        n = len(elements)
        first = self.first_seq
        if n <= 1:
            if n == 1 and element_too_large(recipient, first, elements[0], size, limit):
                return []
            return None
        # pieces of at most 3/4 of the limit at this run's average element size (a piece that
        # still does not fit is split again when its turn comes)
        pieces = max(2, -(-size * 4 // (limit * 3)))
        k = -(-n // pieces)
        limit_run_length(recipient, k)
        return [StreamElements(first + i, RecordRun(elements[i : i + k])) for i in range(0, n, k)]


@dataclass(frozen=True, slots=True)
class StreamCompleted:
    """The stream ended normally after ``total`` elements (-1: unknown, end right away)."""

    total: int = -1


@dataclass(frozen=True, slots=True)
class StreamError:
    """The stream failed after ``total`` elements; the cause travels as its type name and message."""

    cause_type: str
    cause_message: str
    total: int = -1


# -- feeding a producer by message -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Push(Generic[T]):
    """Append ``element`` to the producer's buffer (a dead letter when the buffer is full)."""

    element: T


@dataclass(frozen=True, slots=True)
class CompleteStream:
    """End the stream once the elements already buffered were sent."""


@dataclass(frozen=True, slots=True)
class FailStream:
    """Fail the stream once the elements already buffered were sent."""

    cause_type: str
    cause_message: str = ""


# -- local handles -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class GetSink(Generic[T]):
    """Ask a producer for its :class:`~casty.streams.SinkRef` (only from the producer's own process)."""

    reply_to: ActorRef[SinkRef[T]]


@dataclass(frozen=True, slots=True)
class GetSource(Generic[T]):
    """Ask a consumer for its :class:`~casty.streams.SourceRef` (only from the consumer's own process)."""

    reply_to: ActorRef[SourceRef[T]]


StreamProducerMsg: TypeAlias = (
    Subscribe[T] | StreamDemand | StreamCancel | Push[T] | CompleteStream | FailStream | GetSink[T]
)
"""Every message a stream producer accepts."""

StreamConsumerMsg: TypeAlias = (
    StreamElement[T]
    | StreamElements[T]
    | StreamCompleted
    | StreamError
    | Subscribed
    | SubscriptionRefused
    | GetSource[T]
    | StreamDemand
    | StreamCancel
)
"""Every message a stream consumer accepts (``StreamDemand`` / ``StreamCancel`` told to it are
forwarded to its producer)."""
