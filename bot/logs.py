"""Logging: one JSON object a line for machines, a readable line when a person watches a terminal.

Code logs events through structlog: ``log.info("handoff_requested", peer=peer, handoff_id=...)``;
fields bound with ``structlog.contextvars.bound_contextvars`` (a turn's conversation id, a
handoff's id) are carried by every line logged inside, across awaits. Lines from other libraries
(uvicorn, the SDKs) go through the same stdlib handler and come out in the same shape.

Lines that carry what a user wrote (``content=True``) are dropped unless LOG_CONTENT=true or the
level is DEBUG: message text is personal data.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

import structlog
from opentelemetry import trace
from structlog.typing import EventDict, Processor, WrappedLogger

# Libraries whose DEBUG lines carry request bodies, headers or SQL parameters (tokens among them):
# never below WARNING, whatever LOG_LEVEL says.
NOISY_LOGGERS = (
    "httpx",
    "httpcore",
    "uvicorn.access",
    "a2a",
    "alembic",
    "aiosqlite",
    "sqlalchemy",
    "asyncpg",
)


class _ContentGate:
    """Drops lines marked ``content=True`` unless content logging was chosen at start-up."""

    def __init__(self, allowed: bool) -> None:
        self.allowed = allowed

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
        if event.pop("content", False) and not self.allowed:
            std = logger if isinstance(logger, logging.Logger) else None
            if std is None or not std.isEnabledFor(logging.DEBUG):
                raise structlog.DropEvent
        return event


def _trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event


def _add_bot(bot_name: str) -> Processor:
    def add(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("bot", bot_name)
        return event

    return add


def _time(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """UTC, to the millisecond, as the bot has always written it."""
    event["time"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    return event


def _error_key(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """A traceback goes under ``error`` (the field operators' queries already use)."""
    if "exception" in event:
        event["error"] = event.pop("exception")
    # uvicorn attaches a copy of its message with terminal colour codes; JSON lines carry plain text.
    event.pop("color_message", None)
    return event


def _order(_: WrappedLogger, __: str, event: EventDict) -> MutableMapping[str, Any]:
    """time, level, bot, logger, event first: how a person scans a line."""
    head = {key: event.pop(key) for key in ("time", "level", "bot", "logger", "event") if key in event}
    return {**head, **event}


_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.stdlib.PositionalArgumentsFormatter(),
    _trace_ids,
]


def configure_structlog(*, log_content: bool = False) -> None:
    """Route structlog through the stdlib logging tree (so one handler renders every line).

    Called again (tests, an embedding process), only the content choice changes: loggers already
    in use keep the processors they were built with, so the gate is updated in place."""
    if structlog.is_configured():
        for processor in structlog.get_config()["processors"]:
            if isinstance(processor, _ContentGate):
                processor.allowed = log_content
                return
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            _ContentGate(log_content),
            *_SHARED,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def json_formatter(bot_name: str) -> logging.Formatter:
    return _formatter(bot_name, structlog.processors.JSONRenderer(default=str))


def console_formatter(bot_name: str, *, colors: bool) -> logging.Formatter:
    return _formatter(bot_name, structlog.dev.ConsoleRenderer(colors=colors, sort_keys=False))


def _formatter(bot_name: str, renderer: Processor) -> logging.Formatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_SHARED, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _time,
            _add_bot(bot_name),
            structlog.processors.format_exc_info,
            _error_key,
            _order,
            renderer,
        ],
    )


def configure_logging(bot_name: str, level: str, *, log_content: bool = False) -> None:
    """JSON lines on stderr; a readable (uncoloured unless a terminal) line when a person watches."""
    configure_structlog(log_content=log_content)
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        handler.setFormatter(console_formatter(bot_name, colors=True))
    else:
        handler.setFormatter(json_formatter(bot_name))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
