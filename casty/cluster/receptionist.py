"""``casty.cluster.receptionist`` of casty 0.21: service keys, listings and the receptionist."""

from __future__ import annotations

from casty.actors.receptionist import (
    Deregister,
    Find,
    Listing,
    ReceptionistMsg,
    Register,
    ServiceInstance,
    ServiceKey,
    Subscribe,
    receptionist_actor,
)

__all__ = [
    "Deregister",
    "Find",
    "Listing",
    "ReceptionistMsg",
    "Register",
    "ServiceInstance",
    "ServiceKey",
    "Subscribe",
    "receptionist_actor",
]
