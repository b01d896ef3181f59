"""Logging: one JSON object a line for machines, a readable line when a person watches a terminal.

Events are logged as ``logger.info("event_name", extra={"event": ..., fields...})``; the extra
fields become top-level keys of the JSON line.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from a2a_bridge.log_context import current_log_fields
from a2a_bridge.telemetry import trace_ids

_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, bot_name: str) -> None:
        super().__init__()
        self._bot_name = bot_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "bot": self._bot_name,
            "logger": record.name,
            "event": getattr(record, "event", None) or record.getMessage(),
        }
        if getattr(record, "event", None) and record.getMessage() != record.event:  # type: ignore[attr-defined]
            line["message"] = record.getMessage()
        for key, value in current_log_fields().items():
            line.setdefault(key, value)
        for trace_id, span_id in trace_ids():
            line.setdefault("trace_id", trace_id)
            line.setdefault("span_id", span_id)
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in line:
                line[key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class ConsoleFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = json.loads(super().format(record))
        head = (
            f"{fields.pop('time')[11:23]} {fields.pop('level'):7} {fields.pop('bot')}: {fields.pop('event')}"
        )
        fields.pop("logger", None)
        error = fields.pop("error", None)
        rest = " ".join(f"{key}={value}" for key, value in fields.items())
        return f"{head} {rest}".rstrip() + (f"\n{error}" if error else "")


_content_level = logging.DEBUG


def content_level() -> int:
    """The level for lines that carry message text or summaries: DEBUG unless LOG_CONTENT=true."""
    return _content_level


def configure_logging(bot_name: str, level: str, *, log_content: bool = False) -> None:
    global _content_level
    _content_level = logging.INFO if log_content else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    formatter = ConsoleFormatter if sys.stderr.isatty() else JsonFormatter
    handler.setFormatter(formatter(bot_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "uvicorn.access", "a2a"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
