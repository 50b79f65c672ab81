"""ClusterClient: discover, spawn, ask and stream from outside a cluster."""

from casty.client.client import ClusterClient as ClusterClient
from casty.client.client import ClusterUnavailable as ClusterUnavailable

__all__ = ["ClusterClient", "ClusterUnavailable"]
