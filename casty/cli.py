"""The ``casty`` command (also ``python -m casty``).

``casty status --contact HOST:PORT``
    Asks the contact node for its view of the cluster (members, reachability, leader,
    services per key), then every up member for its streams and connections, and prints
    them (``--json``: one JSON document). Exit status 0 when the cluster answered, 2 when no
    contact answered (the reason on one line of stderr).
``casty top --contact HOST:PORT``
    The same, redrawn every second, streams sorted by rate (plain ANSI; Ctrl-C ends it).
``casty config --defaults``
    The documented ``casty.toml`` with every knob at its default.

Inspection travels over the ordinary transport as a client: the cluster's secret
(``--secret-file``, or ``--config casty.toml``) and TLS settings (``--tls`` with
``--tls-ca``/``--tls-cert``/``--tls-key``, or ``--config``) are needed exactly as for any
client. The system name is learned from the contact when it is not given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import re
import sys
import textwrap
import time
import typing
from collections.abc import Sequence
from typing import Any, TextIO

from casty.actors.ref import SystemAddress
from casty.config import CastyConfig, TlsConfig, load_config
from casty.errors import CastyError, ConfigError
from casty.remote.connection import Connection
from casty.remote.inspection import Inspect, InspectReply
from casty.remote.system import RemoteActorSystem
from casty.remote.tls import client_context

__all__ = ["Inspector", "InspectionFailed", "defaults_toml", "main"]

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_NO_ANSWER = 2

_MISMATCH = re.compile(r"system name mismatch: peer is '[^']*', this is '([^']+)'")


class InspectionFailed(CastyError):
    """No answer from a node (its one-line reason is the message)."""


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


class Inspector:
    """A client-side transport that asks nodes for their view."""

    def __init__(self, config: CastyConfig, system_name: str | None, ssl_client: Any, timeout: float) -> None:
        self.config = config
        self.name = system_name
        self.ssl_client = ssl_client
        self.timeout = timeout
        self.system: RemoteActorSystem | None = None
        self._tokens = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}

    async def _system(self, name: str) -> RemoteActorSystem:
        if self.system is not None and self.system.name == name:
            return self.system
        await self.close()
        system = RemoteActorSystem(
            name, host="127.0.0.1", port=0, config=self.config, listen=False, kind="client", ssl_client=self.ssl_client
        )
        await system.start()
        system.require_transport().add_control_handler(InspectReply, self._on_reply)
        self.system = system
        return system

    def _on_reply(self, conn: Connection, msg: InspectReply) -> None:
        future = self._waiting.pop(msg.token, None) if isinstance(msg.token, int) else None
        if future is not None and not future.done():
            future.set_result(msg.view if isinstance(msg.view, dict) else {"error": "malformed answer"})

    async def _connect(self, system: RemoteActorSystem, host: str, port: int) -> None:
        transport = system.require_transport()
        assoc = transport.association(SystemAddress(system.name, host, port))
        if assoc.conn is not None:
            return
        conn = Connection(transport, inbound=False, assoc=assoc)
        try:
            async with asyncio.timeout(self.timeout):
                await transport.loop.create_connection(
                    lambda: conn, host, port, ssl=self.ssl_client, server_hostname=host if self.ssl_client else None
                )
            async with asyncio.timeout(self.timeout):
                await conn.handshake_done
        except TimeoutError:
            conn.close()
            raise InspectionFailed(f"{host}:{port} did not answer within {self.timeout:g}s") from None
        except ConnectionRefusedError:
            raise InspectionFailed(f"{host}:{port} refused the connection (nothing listens there)") from None
        except OSError as exc:
            raise InspectionFailed(f"cannot reach {host}:{port}: {exc.strerror or exc}") from None
        except CastyError as exc:
            raise InspectionFailed(f"{host}:{port}: {exc}") from None

    async def inspect(self, host: str, port: int) -> dict[str, Any]:
        """The view of the node at ``host:port``; :class:`InspectionFailed` with the reason."""
        name = self.name or self.config.system.name
        system = await self._system(name)
        try:
            await self._connect(system, host, port)
        except InspectionFailed as exc:
            found = _MISMATCH.search(str(exc))
            if found is None or self.name is not None:
                raise
            self.name = found.group(1)  # learned from the contact: ask again under its name
            system = await self._system(self.name)
            await self._connect(system, host, port)
        self.name = name if self.name is None else self.name
        token = next(self._tokens)
        future: asyncio.Future[dict[str, Any]] = system.loop.create_future()
        self._waiting[token] = future
        system.require_transport().send_control(SystemAddress(system.name, host, port), Inspect(token))
        try:
            async with asyncio.timeout(self.timeout):
                return await future
        except TimeoutError:
            raise InspectionFailed(f"{host}:{port} accepted the connection but did not answer") from None
        finally:
            self._waiting.pop(token, None)

    async def cluster(self, contacts: Sequence[tuple[str, int]]) -> dict[str, Any]:
        """The contact's view plus the streams and connections of every up member."""
        reasons: list[str] = []
        for host, port in contacts:
            try:
                view = await self.inspect(host, port)
                break
            except InspectionFailed as exc:
                reasons.append(str(exc))
        else:
            raise InspectionFailed("; ".join(reasons) or "no contact given")
        contact = view.get("node") or f"{contacts[0][0]}:{contacts[0][1]}"
        nodes: dict[str, dict[str, Any]] = {contact: view}
        others = [
            m["address"] for m in view.get("members", ()) if m.get("status") == "up" and m.get("address") != contact
        ]

        async def one(address: str) -> None:
            host, port = _host_port(address)
            try:
                nodes[address] = await self.inspect(host, port)
            except InspectionFailed as exc:
                nodes[address] = {"error": str(exc)}

        await asyncio.gather(*(one(a) for a in others))
        streams = [
            {"node": address, **s} for address, v in sorted(nodes.items()) for s in v.get("streams", ())
        ]
        streams.sort(key=lambda s: (bool(s.get("done")), -float(s.get("rate", 0.0))))
        return {
            "contact": contact,
            "system": view.get("system"),
            "leader": view.get("leader"),
            "members": view.get("members", []),
            "services": view.get("services", {}),
            "streams": streams,
            "nodes": {
                address: (
                    {"error": v["error"]}
                    if "error" in v
                    else {
                        "ready": v.get("ready"),
                        "ready_reason": v.get("ready_reason"),
                        "connections": v.get("connections", []),
                        "stats": v.get("stats", {}),
                    }
                )
                for address, v in sorted(nodes.items())
            },
            "time": time.time(),
        }

    async def close(self) -> None:
        system, self.system = self.system, None
        if system is not None:
            await system.shutdown()


# -- rendering -------------------------------------------------------------------------------------
def _rate(value: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.1f}M/s"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k/s"
    return f"{value:.0f}/s"


def _table(rows: list[list[str]], out: list[str]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def render(status: dict[str, Any], bold: str = "", reset: str = "") -> str:
    """``casty status`` as text."""
    out: list[str] = []
    members = status["members"]
    up = sum(1 for m in members if m["status"] == "up")
    out.append(
        f"{bold}cluster {status['system']!r}{reset} via {status['contact']}: "
        f"{len(members)} members, {up} up, leader {status['leader'] or '-'}"
    )
    out.append("")
    out.append(f"{bold}MEMBERS{reset}")
    if members:
        rows = [["ADDRESS", "STATUS", "REACHABLE", "ROLES", "READY"]]
        for m in members:
            node = status["nodes"].get(m["address"], {})
            ready = "-" if "error" in node or "ready" not in node else ("yes" if node["ready"] else "no")
            mark = " (leader)" if m.get("leader") else ""
            rows.append(
                [m["address"] + mark, m["status"], "yes" if m["reachable"] else "NO", ",".join(m["roles"]) or "-", ready]
            )
        _table(rows, out)
    else:
        out.append("  (not a cluster node)")
    out.append("")
    out.append(f"{bold}SERVICES{reset}")
    services = status["services"]
    if services:
        rows = [["KEY", "INSTANCES", "NODES"]]
        for key, instances in services.items():
            nodes = sorted({i["node"] + ("" if i["reachable"] else " (unreachable)") for i in instances})
            rows.append([key, str(len(instances)), ", ".join(nodes)])
        _table(rows, out)
    else:
        out.append("  (none)")
    out.append("")
    out.append(f"{bold}STREAMS{reset}")
    streams = status["streams"]
    if streams:
        rows = [["NODE", "STREAM", "ROLE", "RATE", "DELIVERED", "BUFFERED", "UNACKED", "DEMAND", "STATE"]]
        for s in streams:
            rows.append(
                [
                    s["node"],
                    s["stream"],
                    s["role"],
                    _rate(float(s["rate"])),
                    str(s["delivered"]),
                    str(s["buffered"]),
                    str(s["unacked"]) if s["role"] == "producer" else "-",
                    str(s["demand"]),
                    "done" if s["done"] else "open",
                ]
            )
        _table(rows, out)
    else:
        out.append("  (none)")
    out.append("")
    out.append(f"{bold}NODES{reset}")
    rows = [["NODE", "ACTORS", "DEAD LETTERS", "PEERS", "SENT", "RECEIVED"]]
    for address, node in status["nodes"].items():
        if "error" in node:
            rows.append([address, "-", "-", "-", "-", node["error"]])
            continue
        stats = node["stats"]
        rows.append(
            [
                address,
                str(stats.get("actors", 0)),
                str(stats.get("dead_letters", 0)),
                str(sum(1 for c in node["connections"] if c["state"] == "open")),
                f"{stats.get('bytes_sent', 0) / 1e6:.1f} MB",
                f"{stats.get('bytes_received', 0) / 1e6:.1f} MB",
            ]
        )
    _table(rows, out)
    return "\n".join(out) + "\n"


# -- config --defaults -----------------------------------------------------------------------------
def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _sections(cls: type, path: str) -> list[tuple[str, type]]:
    """``(dotted path, section class)`` of ``cls`` and every section nested in it, in order."""
    found = [(path, cls)]
    types = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = types[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            found.extend(_sections(tp, f"{path}.{f.name}" if path else f.name))
    return found


def defaults_toml() -> str:
    """Every section and knob of ``casty.toml`` at its default, each with its description."""
    lines = ["# casty.toml: every knob at its default (generated from casty/config/schema.py)."]
    for path, cls in _sections(CastyConfig, ""):
        types = typing.get_type_hints(cls)
        scalars = [
            f for f in dataclasses.fields(cls) if not (isinstance(types[f.name], type) and dataclasses.is_dataclass(types[f.name]))
        ]
        if not path or not scalars:
            continue
        defaults = cls()
        lines.append("")
        doc = " ".join((cls.__doc__ or "").split())
        if doc.startswith("``[") and ": " in doc:
            doc = doc.split(": ", 1)[1]
        if doc:
            lines.append("# " + doc[0].upper() + doc[1:])
        lines.append(f"[{path}]")
        for f in scalars:
            for text in textwrap.wrap(" ".join(f.metadata.get("doc", "").split()), 96):
                lines.append("# " + text)
            lines.append(f"{f.name} = {_toml(getattr(defaults, f.name))}")
    return "\n".join(lines) + "\n"


# -- the command -----------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="casty", description="Inspect a running casty cluster.")
    sub = parser.add_subparsers(dest="command", required=True)

    def connection_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--contact", action="append", required=True, type=_host_port, metavar="HOST:PORT",
                       help="a node of the cluster (repeat for fallbacks)")
        p.add_argument("--config", metavar="FILE", help="casty.toml giving the system name, secret and TLS settings")
        p.add_argument("--system", metavar="NAME", help="the cluster's system name (learned from the contact if omitted)")
        p.add_argument("--secret-file", metavar="FILE", help="file holding the cluster secret")
        p.add_argument("--tls", action="store_true", help="connect with TLS")
        p.add_argument("--tls-ca", metavar="FILE", default="", help="CA bundle verifying the nodes")
        p.add_argument("--tls-cert", metavar="FILE", default="", help="client certificate (mutual TLS)")
        p.add_argument("--tls-key", metavar="FILE", default="", help="client certificate's key")
        p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each node (default 5)")

    status = sub.add_parser("status", help="members, services and streams of a cluster")
    connection_options(status)
    status.add_argument("--json", action="store_true", help="print one JSON document")
    top = sub.add_parser("top", help="status, refreshed every second")
    connection_options(top)
    top.add_argument("--interval", type=float, default=1.0, help=argparse.SUPPRESS)
    top.add_argument("--iterations", type=int, default=0, help=argparse.SUPPRESS)
    config = sub.add_parser("config", help="configuration reference")
    config.add_argument("--defaults", action="store_true", required=True, help="print casty.toml with every default")
    return parser


def _client_setup(args: argparse.Namespace) -> tuple[CastyConfig, Any]:
    config = load_config(args.config) if args.config else CastyConfig()
    if args.secret_file:
        security = dataclasses.replace(config.security, cluster_secret="", secret_file=args.secret_file)
        config = dataclasses.replace(config, security=security)
    config.security.resolve_secret()  # an unreadable secret file is a usage error, reported now
    ssl_client = None
    if args.tls or args.tls_ca or args.tls_cert:
        ssl_client = client_context(TlsConfig(certfile=args.tls_cert, keyfile=args.tls_key, cafile=args.tls_ca))
    elif config.tls.enabled:
        ssl_client = client_context(config.tls)
    return config, ssl_client


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    config, ssl_client = _client_setup(args)
    system_name = args.system or (config.system.name if args.config else None)
    inspector = Inspector(config, system_name, ssl_client, args.timeout)
    try:
        if args.command == "status":
            try:
                status = await inspector.cluster(args.contact)
            except InspectionFailed as exc:
                print(f"casty: no answer: {exc}", file=sys.stderr)
                return EXIT_NO_ANSWER
            out.write(json.dumps(status, indent=2) + "\n" if args.json else render(status))
            return EXIT_OK
        tty = out.isatty()
        bold, reset = ("\x1b[1m", "\x1b[0m") if tty else ("", "")
        shown = 0
        while True:
            try:
                status = await inspector.cluster(args.contact)
                text = render(status, bold, reset)
            except InspectionFailed as exc:
                text = f"no answer: {exc}\n"
            header = f"casty top - {time.strftime('%H:%M:%S')} (Ctrl-C ends)\n\n"
            out.write(("\x1b[H\x1b[2J" if tty else "") + header + text)
            out.flush()
            shown += 1
            if args.iterations and shown >= args.iterations:
                return EXIT_OK
            await asyncio.sleep(args.interval)
    finally:
        await inspector.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``casty`` command; returns its exit status."""
    import logging

    from casty._run import run

    args = _parser().parse_args(argv)
    if args.command == "config":
        sys.stdout.write(defaults_toml())
        return EXIT_OK
    # the transport's own warnings (a refused handshake, a lost connection) would repeat the
    # one-line reason the command prints
    logging.getLogger("casty").setLevel(logging.CRITICAL)
    try:
        return run(_run(args, sys.stdout))
    except ConfigError as exc:
        print(f"casty: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    except (BrokenPipeError, ConnectionResetError):
        with contextlib.suppress(Exception):
            sys.stdout.close()
        return EXIT_OK
