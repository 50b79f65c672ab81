"""Structured logs: ``[logging] format = "json"`` (or ``CASTY_LOG_FORMAT=json``) writes one
JSON object per line.

Each object has ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``node`` (the
address of the node this process runs, once it has one), and where they apply ``actor`` (the
path of the actor that logged through ``ctx.log``), ``stream`` (a stream's id) and ``error``
(the formatted exception).
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from casty.actors.system import ActorSystem

__all__ = ["ENV_FORMAT", "JsonFormatter", "configure_logging"]

#: the environment variable that overrides ``[logging] format``
ENV_FORMAT = "CASTY_LOG_FORMAT"

_node = ""


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if _node:
            out["node"] = _node
        for key in ("actor", "stream"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = str(value)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(system: ActorSystem) -> None:
    """Apply ``[logging]`` for ``system`` (the environment's ``CASTY_LOG_FORMAT`` first).

    ``json`` gives every handler of the root logger the JSON formatter, adding one that writes
    to stderr when there is none; ``text`` leaves the handlers alone. A non-empty ``level``
    sets the level of the ``casty`` loggers."""
    global _node
    cfg = system.config.logging
    address = system.address
    if address.host:
        _node = f"{address.host}:{address.port}"
    fmt = os.environ.get(ENV_FORMAT, "").strip().lower() or cfg.format
    if fmt == "json":
        root = logging.getLogger()
        if not root.handlers:
            root.addHandler(logging.StreamHandler(sys.stderr))
            if root.level > logging.INFO:
                root.setLevel(logging.INFO)
        for handler in root.handlers:
            if not isinstance(handler.formatter, JsonFormatter):
                handler.setFormatter(JsonFormatter())
    elif fmt != "text":
        logging.getLogger("casty").warning("%s=%r is neither text nor json; logs stay as they are", ENV_FORMAT, fmt)
    if cfg.level:
        logging.getLogger("casty").setLevel(cfg.level.upper())
