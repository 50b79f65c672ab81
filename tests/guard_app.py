"""The programs the connection-guard tests launch: a node under attack, and the attackers.

``python -m tests.guard_app node CONFIG_JSON [--cluster SEED_PORT]`` starts a node with an
echo actor at ``/user/echo`` and a slow counter at ``/user/tally`` (see :func:`tally`), prints
``{"port", "pid"}`` and runs until its stdin closes.

``python -m tests.guard_app fleet-node CONFIG_JSON`` starts a one-node cluster whose tally is
discoverable under ``TALLY_KEY``; ``python -m tests.guard_app clients PORT COUNT READINGS``
starts COUNT ``ClusterClient``s at once against it, each telling the tally READINGS readings,
and prints ``{"connected", "seconds"}`` once all are in and done.

``python -m tests.guard_app attack KIND PORT COUNT SOURCE`` runs one attack against the node
on ``PORT`` from the local address ``SOURCE`` (any of 127.0.0.0/8 on Linux), prints
``{"ready": ...}`` once the attack is in place and keeps it up until its stdin closes. Kinds:

* ``idle`` -- COUNT connections complete the handshake (no secret) and send one tiny control
  frame (a Ping) every 2 s, nothing else;
* ``reopen`` -- COUNT sockets re-opened as fast as the node drops them, never sending a byte;
* ``hold`` -- COUNT sockets opened and held, never sending a byte;
* ``partial`` -- COUNT handshaken connections each sending all but the last bytes of a frame of
  ``max_frame_size`` bytes, then nothing;
* ``typedefs`` -- one connection at a time, handshaken, sending frames of 1,000 type
  definitions each (COUNT definitions per connection), reconnecting when the node refuses.

Every attacker is hand-made from sockets and msgpack; only casty's encoder is borrowed to
write well-formed envelopes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import struct
import sys
from dataclasses import dataclass
from typing import Any

import msgpack  # type: ignore[import-untyped, unused-ignore]

import casty
from casty import ActorContext, ActorRef, Behavior, Behaviors, ClusterClient, ServiceKey
from casty.remote import PROTOCOL_VERSION
from casty.remote.control import CONTROL_PATH, Ping
from casty.serde import MsgpackSerializer
from tests.remote_app import _wait_for_exit, echo

SYSTEM = "guard"
TALLY_KEY: ServiceKey[Any] = ServiceKey("tally")
FRAME_LIMIT = 4 * 1024 * 1024


@dataclass(frozen=True)
class Reading:
    """One field, as small as a message gets."""

    n: int


@dataclass(frozen=True)
class Tally:
    reply_to: ActorRef[int]


def tally() -> Behavior[Any]:
    """Counts ``Reading``s, slowly: every reading costs an event-loop turn."""
    count = 0

    async def receive(ctx: ActorContext[Any], msg: Any) -> None:
        nonlocal count
        if type(msg) is Reading:
            count += 1
            await asyncio.sleep(0)
        elif isinstance(msg, Tally):
            msg.reply_to.tell(count)

    return Behaviors.receive(receive)


def rss_kib(pid: int) -> int:
    """Resident set size of process ``pid``, in KiB (Linux)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# -- the node ------------------------------------------------------------------------------------


async def run_node(config: dict[str, Any], seed_port: int | None) -> None:
    cfg = casty.CastyConfig.from_dict(config)
    system: casty.RemoteActorSystem
    if seed_port is None:
        system = casty.RemoteActorSystem(SYSTEM, config=cfg)
    else:
        seeds = [("127.0.0.1", seed_port)]
        system = casty.ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, seed_nodes=seeds, config=cfg)
    async with system:
        system.spawn(echo(), "echo")
        system.spawn(tally(), "tally")
        print(json.dumps({"port": system.port, "pid": os.getpid()}), flush=True)
        await _wait_for_exit()


async def run_fleet_node(config: dict[str, Any]) -> None:
    cfg = casty.CastyConfig.from_dict(config)
    async with casty.ClusteredActorSystem(SYSTEM, "127.0.0.1", 0, config=cfg) as system:
        system.spawn(Behaviors.discoverable(tally(), key=TALLY_KEY), "tally")
        await system.wait_for(1, timeout=30)
        print(json.dumps({"port": system.port, "pid": os.getpid()}), flush=True)
        await _wait_for_exit()


async def run_clients(port: int, count: int, readings: int) -> None:
    """``count`` clients connect at once; each finds the tally and tells it ``readings`` readings."""
    started = asyncio.get_running_loop().time()
    clients = [ClusterClient(contact_points=[("127.0.0.1", port)], system_name=SYSTEM) for _ in range(count)]

    async def one(index: int, client: ClusterClient) -> None:
        await client.__aenter__()
        listing = await client.wait_for_service(TALLY_KEY, timeout=50)
        ref = next(iter(listing.instances)).ref
        for seq in range(readings):
            ref.tell(Reading(index * readings + seq))

    results = await asyncio.gather(*(one(i, c) for i, c in enumerate(clients)), return_exceptions=True)
    failed = [repr(r) for r in results if isinstance(r, BaseException)]
    seconds = asyncio.get_running_loop().time() - started
    print(json.dumps({"connected": count - len(failed), "failed": failed[:5], "seconds": seconds}), flush=True)
    await _wait_for_exit()
    await asyncio.gather(*(c.__aexit__(None, None, None) for c in clients), return_exceptions=True)


# -- the attackers -----------------------------------------------------------------------------------


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


_turn = 0


async def open_from(source: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from ``source``: one local address, or several separated by commas, used
    in turn."""
    global _turn
    sources = source.split(",")
    _turn += 1
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.bind((sources[_turn % len(sources)], 0))
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return await asyncio.open_connection(sock=sock)
    except BaseException:
        sock.close()
        raise


async def read_frame(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(4)
    return msgpack.unpackb(await reader.readexactly(struct.unpack(">I", header)[0]), raw=False)


async def handshaken(source: str, port: int, ident: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection that completes the handshake as a client (the node has no secret); tries
    again, as an attacker would, while the node refuses or drops it."""
    while True:
        try:
            return await handshake_once(source, port, ident)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            await asyncio.sleep(0.05)


async def handshake_once(source: str, port: int, ident: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await open_from(source, port)
    hello = {
        "t": "hello",
        "v": PROTOCOL_VERSION,
        "system": SYSTEM,
        "host": ident,
        "port": 0,
        "uid": int.from_bytes(os.urandom(7), "big") | 1,
        "kind": "client",
        "nonce": os.urandom(16),
    }
    writer.write(frame(msgpack.packb(hello)))
    welcome = await asyncio.wait_for(read_frame(reader), 30)
    if welcome.get("t") != "welcome":
        writer.close()
        raise ConnectionError(f"refused: {welcome}")
    writer.write(frame(msgpack.packb({"t": "confirm", "mac": b""})))
    return reader, writer


async def drain_forever(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while await reader.read(65536):
            pass


async def idle(source: str, port: int, count: int, ready: asyncio.Event) -> None:
    encoder = MsgpackSerializer().new_encoder(lambda ref: "")
    first = frame(encoder.encode([[0, CONTROL_PATH], Ping()]))
    later = frame(encoder.encode([0, Ping()]))
    opened = 0

    async def one(i: int) -> None:
        nonlocal opened
        reader, writer = await handshaken(source, port, f"idle-{i}")
        writer.write(first)
        opened += 1
        if opened == count:
            ready.set()
        drain = asyncio.ensure_future(drain_forever(reader))
        while not drain.done():
            await asyncio.sleep(2.0)
            writer.write(later)

    await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)


async def reopen(source: str, port: int, count: int, ready: asyncio.Event) -> None:
    connects = 0

    async def one() -> None:
        nonlocal connects
        while True:
            try:
                reader, writer = await open_from(source, port)
            except OSError:
                await asyncio.sleep(0)
                continue
            connects += 1
            if connects >= count:
                ready.set()
            await drain_forever(reader)
            writer.close()

    await asyncio.gather(*(one() for _ in range(count)))


async def hold(source: str, port: int, count: int, ready: asyncio.Event) -> None:
    held = []
    for _ in range(count):
        with contextlib.suppress(OSError):
            held.append(await open_from(source, port))
    ready.set()
    await asyncio.Event().wait()


async def partial(source: str, port: int, count: int, ready: asyncio.Event) -> None:
    conns = []
    body = b"\x00" * (FRAME_LIMIT - 64)
    for i in range(count):
        reader, writer = await handshaken(source, port, f"partial-{i}")
        writer.write(struct.pack(">I", FRAME_LIMIT) + body)
        conns.append((reader, writer))
    ready.set()
    await asyncio.Event().wait()


def typedef_frames(count: int) -> list[bytes]:
    """Envelopes to a path with no actor, each a list of 1,000 ``Ping`` values whose type is
    defined afresh for every value (a well-formed message, as many definitions as values)."""
    name = f"{Ping.__module__}:{Ping.__qualname__}".encode()
    frames = []
    ident = 0
    path = [0, "/user/nobody"]
    while ident < count:
        values = []
        for _ in range(min(1000, count - ident)):
            values.append([msgpack.ExtType(1, struct.pack(">I", ident) + name)])
            ident += 1
        frames.append(frame(msgpack.packb([path, values], use_bin_type=True)))
        path = 0  # type: ignore[assignment]
    return frames


async def typedefs(source: str, port: int, count: int, ready: asyncio.Event) -> None:
    frames = b"".join(typedef_frames(count))
    rounds = 0
    while True:
        reader, writer = await handshaken(source, port, f"types-{rounds}")
        writer.write(frames)
        rounds += 1
        ready.set()
        await drain_forever(reader)
        writer.close()


ATTACKS = {"idle": idle, "reopen": reopen, "hold": hold, "partial": partial, "typedefs": typedefs}


async def run_attack(kind: str, port: int, count: int, source: str) -> None:
    ready = asyncio.Event()
    attack = asyncio.ensure_future(ATTACKS[kind](source, port, count, ready))
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait({attack, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if attack.done():
        attack.result()  # an attack that failed to start says why
    print(json.dumps({"ready": kind}), flush=True)
    await _wait_for_exit()
    attack.cancel()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[0] == "node":
        seed = int(args[3]) if len(args) > 3 and args[2] == "--cluster" else None
        casty.run(run_node(json.loads(args[1]), seed))
    elif args[0] == "fleet-node":
        casty.run(run_fleet_node(json.loads(args[1])))
    elif args[0] == "clients":
        casty.run(run_clients(int(args[1]), int(args[2]), int(args[3])))
    elif args[0] == "attack":
        casty.run(run_attack(args[1], int(args[2]), int(args[3]), args[4]))
    else:
        raise SystemExit(f"unknown program {args[0]!r}")


if __name__ == "__main__":
    # run as the importable module, so its message classes are tests.guard_app's own
    from tests.guard_app import main as imported_main

    imported_main()
