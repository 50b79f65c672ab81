"""Clustering: membership by gossip, phi-accrual failure detection, downing, service discovery."""

# loaded for the wire names of the membership types and the client protocol (see each module)
from casty.cluster import _membership as _membership
from casty.cluster import _protocol as _protocol
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

__all__ = [
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
]
