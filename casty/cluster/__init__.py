"""Clustering: membership by gossip, phi-accrual failure detection, downing, service discovery."""

from casty.cluster._membership import ClusterState as ClusterState
from casty.cluster._membership import LeaderChanged as LeaderChanged
from casty.cluster._membership import Member as Member
from casty.cluster._membership import MemberDowned as MemberDowned
from casty.cluster._membership import MemberExited as MemberExited
from casty.cluster._membership import MemberJoined as MemberJoined
from casty.cluster._membership import MemberLeft as MemberLeft
from casty.cluster._membership import MemberRemoved as MemberRemoved
from casty.cluster._membership import MemberStatus as MemberStatus
from casty.cluster._membership import MemberUp as MemberUp
from casty.cluster._membership import ReachableMember as ReachableMember
from casty.cluster._membership import UnreachableMember as UnreachableMember
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
