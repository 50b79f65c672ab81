"""The actor layer under the module path casty 0.21 programs import it from (``casty.core``).

Every name here is the same object as the one exported by :mod:`casty`.
"""

from __future__ import annotations

from casty.core.actor import CellContext as CellContext
from casty.core.behavior import Behavior as Behavior
from casty.core.behavior import Signal as Signal
from casty.core.context import ActorContext as ActorContext
from casty.core.context import System as System
from casty.core.event_stream import EventStreamMsg as EventStreamMsg
from casty.core.event_stream import Publish as Publish
from casty.core.event_stream import Subscribe as Subscribe
from casty.core.event_stream import Unsubscribe as Unsubscribe
from casty.core.event_stream import event_stream_actor as event_stream_actor
from casty.core.events import ActorRestarted as ActorRestarted
from casty.core.events import ActorStarted as ActorStarted
from casty.core.events import ActorStopped as ActorStopped
from casty.core.events import DeadLetter as DeadLetter
from casty.core.events import UnhandledMessage as UnhandledMessage
from casty.core.mailbox import Mailbox as Mailbox
from casty.core.mailbox import MailboxOverflowStrategy as MailboxOverflowStrategy
from casty.core.messages import Terminated as Terminated
from casty.core.ref import ActorRef as ActorRef
from casty.core.scheduler import CancelSchedule as CancelSchedule
from casty.core.scheduler import ScheduleOnce as ScheduleOnce
from casty.core.scheduler import SchedulerMsg as SchedulerMsg
from casty.core.scheduler import ScheduleTick as ScheduleTick
from casty.core.scheduler import scheduler as scheduler
from casty.core.supervision import Directive as Directive
from casty.core.supervision import OneForOneStrategy as OneForOneStrategy
from casty.core.supervision import SupervisionStrategy as SupervisionStrategy
from casty.core.system import ActorSystem as ActorSystem

__all__ = [
    "ActorContext",
    "ActorRef",
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "ActorSystem",
    "Behavior",
    "CancelSchedule",
    "CellContext",
    "DeadLetter",
    "Directive",
    "EventStreamMsg",
    "Mailbox",
    "MailboxOverflowStrategy",
    "OneForOneStrategy",
    "Publish",
    "ScheduleOnce",
    "ScheduleTick",
    "SchedulerMsg",
    "Signal",
    "Subscribe",
    "SupervisionStrategy",
    "System",
    "Terminated",
    "UnhandledMessage",
    "Unsubscribe",
    "event_stream_actor",
    "scheduler",
]
