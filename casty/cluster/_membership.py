"""The wire names of the membership types.

A record's type travels as ``module:qualname``, and a receiving process finds the class in
that module.  The membership types were first defined here; they now live in
:mod:`casty.cluster.members`, :mod:`casty.cluster.events`, :mod:`casty.cluster.gossip` and
:mod:`casty.cluster.vector_clock`, keep this module's name as their ``__module__``, and this
module holds them so peers of any version decode them alike.  Import them from their own
modules.
"""

from casty.cluster.events import LeaderChanged as LeaderChanged
from casty.cluster.events import MemberDowned as MemberDowned
from casty.cluster.events import MemberExited as MemberExited
from casty.cluster.events import MemberJoined as MemberJoined
from casty.cluster.events import MemberLeft as MemberLeft
from casty.cluster.events import MemberRemoved as MemberRemoved
from casty.cluster.events import MemberUp as MemberUp
from casty.cluster.events import ReachableMember as ReachableMember
from casty.cluster.events import UnreachableMember as UnreachableMember
from casty.cluster.gossip import Gossip as Gossip
from casty.cluster.members import ClusterState as ClusterState
from casty.cluster.members import Member as Member
from casty.cluster.members import MemberStatus as MemberStatus
from casty.cluster.vector_clock import VectorOrder as VectorOrder

WIRE_TYPES: tuple[type, ...] = (
    ClusterState,
    Gossip,
    LeaderChanged,
    Member,
    MemberDowned,
    MemberExited,
    MemberJoined,
    MemberLeft,
    MemberRemoved,
    MemberStatus,
    MemberUp,
    ReachableMember,
    UnreachableMember,
    VectorOrder,
)
"""Every type named ``casty.cluster._membership:<qualname>`` on the wire."""
