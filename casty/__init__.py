"""casty: typed, clustered actors for asyncio with backpressured streams over the network.

``IMPLEMENTATION`` tells which fast paths (mailbox run loop, frame codec, stream demand) run in
this process: ``"compiled"`` (the Cython modules, what an install with a C compiler gets),
``"pure"`` (their pure-Python twins, about 2x slower for a local tell: ``CASTY_NO_EXTENSIONS=1``
or an install without a compiler) or ``"mixed"`` (a partial build). ``COMPILED`` is
``IMPLEMENTATION == "compiled"``. When compiled modules are missing and the pure build was not
asked for, ``import casty`` logs one warning on the ``casty`` logger saying so.
"""

from __future__ import annotations

from casty._fastpath import COMPILED as COMPILED
from casty._fastpath import IMPLEMENTATION as IMPLEMENTATION
from casty._run import run as run
from casty.actors.behaviors import Behavior as Behavior
from casty.actors.behaviors import Behaviors as Behaviors
from casty.actors.behaviors import Directive as Directive
from casty.actors.behaviors import OneForOneStrategy as OneForOneStrategy
from casty.actors.behaviors import Signal as Signal
from casty.actors.behaviors import SupervisionStrategy as SupervisionStrategy
from casty.actors.context import ActorContext as ActorContext
from casty.actors.context import Interceptor as Interceptor
from casty.actors.context import TimerScheduler as TimerScheduler
from casty.actors.events import ActorRestarted as ActorRestarted
from casty.actors.events import ActorStarted as ActorStarted
from casty.actors.events import ActorStopped as ActorStopped
from casty.actors.events import DeadLetter as DeadLetter
from casty.actors.events import EventStreamSubscribe as EventStreamSubscribe
from casty.actors.events import EventStreamUnsubscribe as EventStreamUnsubscribe
from casty.actors.events import Publish as Publish
from casty.actors.events import Terminated as Terminated
from casty.actors.events import UnhandledMessage as UnhandledMessage
from casty.actors.eventstream import EventStreamMsg as EventStreamMsg
from casty.actors.eventstream import event_stream_actor as event_stream_actor
from casty.actors.mailbox import Mailbox as Mailbox
from casty.actors.mailbox import MailboxOverflowStrategy as MailboxOverflowStrategy
from casty.actors.receptionist import Deregister as Deregister
from casty.actors.receptionist import Find as Find
from casty.actors.receptionist import Listing as Listing
from casty.actors.receptionist import Register as Register
from casty.actors.receptionist import ServiceInstance as ServiceInstance
from casty.actors.receptionist import ServiceKey as ServiceKey
from casty.actors.receptionist import Subscribe as Subscribe
from casty.actors.receptionist import receptionist_actor as receptionist_actor
from casty.actors.ref import ActorAddress as ActorAddress
from casty.actors.ref import ActorRef as ActorRef
from casty.actors.ref import NodeAddress as NodeAddress
from casty.actors.ref import RefTarget as RefTarget
from casty.actors.ref import SystemAddress as SystemAddress
from casty.actors.scheduler import CancelSchedule as CancelSchedule
from casty.actors.scheduler import ScheduleOnce as ScheduleOnce
from casty.actors.scheduler import SchedulerMsg as SchedulerMsg
from casty.actors.scheduler import ScheduleTick as ScheduleTick
from casty.actors.scheduler import scheduler as scheduler
from casty.actors.system import ActorSystem as ActorSystem
from casty.actors.system import InvalidActorName as InvalidActorName
from casty.actors.system import System as System
from casty.client import ClusterClient as ClusterClient
from casty.client import ClusterUnavailable as ClusterUnavailable
from casty.cluster.events import LeaderChanged as LeaderChanged
from casty.cluster.events import MemberDowned as MemberDowned
from casty.cluster.events import MemberExited as MemberExited
from casty.cluster.events import MemberJoined as MemberJoined
from casty.cluster.events import MemberLeft as MemberLeft
from casty.cluster.events import MemberRemoved as MemberRemoved
from casty.cluster.events import MemberUp as MemberUp
from casty.cluster.events import ReachableMember as ReachableMember
from casty.cluster.events import UnreachableMember as UnreachableMember
from casty.cluster.members import ClusterState as ClusterState
from casty.cluster.members import Member as Member
from casty.cluster.members import MemberStatus as MemberStatus
from casty.cluster.system import ClusteredActorSystem as ClusteredActorSystem
from casty.config import CastyConfig as CastyConfig
from casty.config import discover_config as discover_config
from casty.config import load_config as load_config
from casty.errors import AskTimeoutError as AskTimeoutError
from casty.errors import CastyError as CastyError
from casty.errors import ConfigError as ConfigError
from casty.errors import DeserializationError as DeserializationError
from casty.errors import DrainingError as DrainingError
from casty.errors import ElementTooLarge as ElementTooLarge
from casty.errors import FrameError as FrameError
from casty.errors import FrameTooLarge as FrameTooLarge
from casty.errors import HandshakeError as HandshakeError
from casty.errors import MailboxFull as MailboxFull
from casty.errors import MessageRefused as MessageRefused
from casty.errors import ProtocolError as ProtocolError
from casty.errors import SerializationError as SerializationError
from casty.errors import StreamCancelled as StreamCancelled
from casty.errors import StreamFailed as StreamFailed
from casty.errors import StreamTimeoutError as StreamTimeoutError
from casty.observe import PeerStats as PeerStats
from casty.observe import StreamStats as StreamStats
from casty.observe import SystemStats as SystemStats
from casty.remote import RemoteActorSystem as RemoteActorSystem
from casty.remote.control import DeserializationFailed as DeserializationFailed
from casty.streams import CompleteStream as CompleteStream
from casty.streams import FailStream as FailStream
from casty.streams import GetSink as GetSink
from casty.streams import GetSource as GetSource
from casty.streams import Push as Push
from casty.streams import SinkRef as SinkRef
from casty.streams import SourceRef as SourceRef
from casty.streams import StreamCancel as StreamCancel
from casty.streams import StreamCompleted as StreamCompleted
from casty.streams import StreamConsumerMsg as StreamConsumerMsg
from casty.streams import StreamDemand as StreamDemand
from casty.streams import StreamElement as StreamElement
from casty.streams import StreamElements as StreamElements
from casty.streams import StreamError as StreamError
from casty.streams import StreamProducerMsg as StreamProducerMsg
from casty.streams import StreamSubscribe as StreamSubscribe
from casty.streams import Subscribed as Subscribed
from casty.streams import SubscriptionRefused as SubscriptionRefused
from casty.streams import stream_consumer as stream_consumer
from casty.streams import stream_producer as stream_producer

__version__ = "0.1.0"

__all__ = (
    "ClusterClient",
    "ClusterUnavailable",
    "ClusterState",
    "ClusteredActorSystem",
    "LeaderChanged",
    "Member",
    "MemberDowned",
    "MemberExited",
    "MemberJoined",
    "MemberLeft",
    "MemberRemoved",
    "MemberStatus",
    "MemberUp",
    "ReachableMember",
    "UnreachableMember",
    "CompleteStream",
    "FailStream",
    "GetSink",
    "GetSource",
    "Push",
    "SinkRef",
    "SourceRef",
    "StreamCancel",
    "StreamCompleted",
    "StreamConsumerMsg",
    "StreamDemand",
    "StreamElement",
    "StreamElements",
    "StreamError",
    "StreamProducerMsg",
    "StreamSubscribe",
    "Subscribed",
    "SubscriptionRefused",
    "stream_consumer",
    "stream_producer",
    "RemoteActorSystem",
    "PeerStats",
    "StreamStats",
    "SystemStats",
    "COMPILED",
    "IMPLEMENTATION",
    "ActorAddress",
    "ActorContext",
    "ActorRef",
    "ActorStarted",
    "ActorStopped",
    "ActorSystem",
    "AskTimeoutError",
    "Behavior",
    "Behaviors",
    "CastyConfig",
    "CastyError",
    "ConfigError",
    "DeadLetter",
    "Deregister",
    "DeserializationError",
    "DeserializationFailed",
    "Directive",
    "DrainingError",
    "ElementTooLarge",
    "EventStreamSubscribe",
    "EventStreamUnsubscribe",
    "Find",
    "FrameError",
    "FrameTooLarge",
    "HandshakeError",
    "InvalidActorName",
    "Listing",
    "Mailbox",
    "MailboxFull",
    "MailboxOverflowStrategy",
    "MessageRefused",
    "NodeAddress",
    "OneForOneStrategy",
    "ProtocolError",
    "Publish",
    "RefTarget",
    "Register",
    "SerializationError",
    "ServiceInstance",
    "ServiceKey",
    "StreamCancelled",
    "StreamFailed",
    "StreamTimeoutError",
    "Subscribe",
    "SupervisionStrategy",
    "SystemAddress",
    "Terminated",
    "TimerScheduler",
    "UnhandledMessage",
    "load_config",
    "run",
    "ActorRestarted",
    "CancelSchedule",
    "EventStreamMsg",
    "Interceptor",
    "ScheduleOnce",
    "ScheduleTick",
    "SchedulerMsg",
    "Signal",
    "System",
    "discover_config",
    "event_stream_actor",
    "receptionist_actor",
    "scheduler",
)
