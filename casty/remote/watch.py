"""Death watch across processes.

Two directions meet here:

* a local actor watches a remote one: :meth:`Association.add_watch` records the watch per
  peer and sends ``Watch``; the peer's ``Terminated`` comes back as an ordinary envelope, and
  :meth:`RemoteWatch.on_remote_terminated` forgets the watch on both ends of our bookkeeping;
* a remote actor watches a local one: the peer's ``Watch`` registers its watcher ref on the
  local target through the :class:`~casty.actors.ref.RefTarget` contract, and the watch is
  remembered per peer so it can be dropped when that peer goes away or restarts.

When a peer is gone or restarted, everything we watched there ends with ``Terminated``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from casty.actors.events import Terminated
from casty.actors.ref import ActorRef, RefTarget, SystemAddress
from casty.errors import DeserializationError
from casty.remote.control import Unwatch, Watch
from casty.remote.refs import GoneIncarnation, RemoteTarget, split_target

if TYPE_CHECKING:
    from casty.remote.association import Association
    from casty.remote.transport import RemoteTransport

__all__ = ["RemoteWatch"]

log = logging.getLogger("casty.remote")


class RemoteWatch:
    """The watch bookkeeping of one transport."""

    __slots__ = ("remote_watchers", "transport")

    def __init__(self, transport: RemoteTransport) -> None:
        self.transport = transport
        #: per peer, the (local path, remote watcher) pairs it watches here
        self.remote_watchers: dict[SystemAddress, set[tuple[str, ActorRef[Any]]]] = {}

    # -- remote watchers of local actors ----------------------------------------------------------
    def _local_target(self, key: str) -> tuple[str, RefTarget]:
        """The local path a watch names and what lives there; a path of an earlier incarnation
        of this process names a :class:`GoneIncarnation` (its watchers get Terminated at once)."""
        if "\x00" in key:
            try:
                path = self.transport.inbound_target(key)
                if path is key:
                    gone_path, incarnation = split_target(key)
                    return key, GoneIncarnation(self.transport, gone_path, incarnation)
            except ValueError:
                raise DeserializationError(f"malformed watch target {key!r}") from None
            key = path
        return key, self.transport.system.resolve_local(key).target

    def on_watch(self, msg: Watch) -> None:
        path, target = self._local_target(msg.path)
        if target.add_watcher(msg.watcher):
            self.remote_watchers.setdefault(msg.watcher.system_address, set()).add((path, msg.watcher))

    def on_unwatch(self, msg: Unwatch) -> None:
        path, target = self._local_target(msg.path)
        target.remove_watcher(msg.watcher)
        entries = self.remote_watchers.get(msg.watcher.system_address)
        if entries is not None:
            entries.discard((path, msg.watcher))

    def on_terminated_sent(self, assoc: Association, watched_path: str, watcher_path: str) -> None:
        """A local actor the peer watched has stopped and its Terminated is on the way."""
        entries = self.remote_watchers.get(assoc.address)
        if entries:
            entries.discard((watched_path, assoc.ref(watcher_path)))

    def drop_remote_watchers(self, address: SystemAddress) -> None:
        """The peer at ``address`` went away: its watches on local actors end silently."""
        system = self.transport.system
        for path, watcher in self.remote_watchers.pop(address, set()):
            system.resolve_local(path).target.remove_watcher(watcher)

    # -- local watchers of remote actors ----------------------------------------------------------
    def on_remote_terminated(self, watcher_path: str, msg: Terminated) -> None:
        """A remote actor we watched stopped: forget the watch on both ends of our bookkeeping."""
        ref = msg.ref
        target = ref.target
        if isinstance(target, RemoteTarget) and target.assoc is not None:
            watches = target.assoc.watches
            watchers = watches.get(target.key)
            if watchers is not None:
                for watcher in [w for w in watchers if w.path == watcher_path]:
                    watchers.discard(watcher)
                if not watchers:
                    del watches[target.key]
        self.transport.system.watch_ended(watcher_path, ref)

    # -- the peer as a whole ----------------------------------------------------------------------
    def on_peer_gone(self, assoc: Association, reason: str) -> None:
        assoc.end_watches(f"node lost: {reason}")
        self.drop_remote_watchers(assoc.address)

    def on_peer_process_gone(self, assoc: Association, reason: str) -> None:
        """The peer's process is gone (its address refused a redial): what we watched there has
        stopped, and its watches on us end; the association itself stays (queue, reconnects)."""
        assoc.end_watches(f"node lost: process gone ({reason})")
        self.drop_remote_watchers(assoc.address)

    def on_peer_restarted(self, assoc: Association, old_uid: int, new_uid: int) -> None:
        """The peer restarted: what we watched there is gone, and its watches on us too."""
        log.info("%s restarted (incarnation %x -> %x)", assoc.address, old_uid, new_uid)
        assoc.end_watches("node restarted")
        self.drop_remote_watchers(assoc.address)
        self.transport.notify("restarted", assoc)
