"""Logging setup: plain text or JSON lines on stderr, with job id and host from contextvars."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from hauler.logcontext import host_var, job_id_var
from hauler.redact import printable

if TYPE_CHECKING:  # rich loads with the bars, not with every command's logging
    from rich.console import Console


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = job_id_var.get()
        record.host = host_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, job_id, host."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "job_id": getattr(record, "job_id", None),
            "host": getattr(record, "host", None),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps({k: v for k, v in entry.items() if v is not None})


def setup_logging(level: str, fmt: str) -> None:
    """Send hauler's logs to stderr at ``level`` in ``fmt`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("hauler")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


class _ConsoleHandler(logging.Handler):
    """Writes records through a rich console, above its live display (a plain stream handler
    would write between the bars' redraws and tear them)."""

    def __init__(self, console: Console, like: logging.Handler) -> None:
        super().__init__(like.level)
        self._console = console
        self.setFormatter(like.formatter)
        for log_filter in like.filters:
            self.addFilter(log_filter)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = printable(self.format(record))
            self._console.print(text, markup=False, highlight=False, soft_wrap=True)
        except Exception:  # logging must never break the run; report as logging does
            self.handleError(record)


def route_to_console(console: Console) -> Callable[[], None]:
    """Send hauler's log records through ``console`` while it shows a live display, with the
    same format and filters; the function that puts the previous handlers back."""
    root = logging.getLogger("hauler")
    previous = list(root.handlers)
    root.handlers[:] = [_ConsoleHandler(console, handler) for handler in previous]

    def restore() -> None:
        root.handlers[:] = previous

    return restore
