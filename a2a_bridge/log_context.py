"""Correlation fields for log lines: bound once (a turn's conversation id, a handoff's id) and
carried by every line logged inside, across awaits, by the process's log formatter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

_fields: ContextVar[dict[str, Any] | None] = ContextVar("log_fields", default=None)


@contextmanager
def bind_log_fields(**fields: Any) -> Iterator[None]:
    token = _fields.set({**(_fields.get() or {}), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _fields.reset(token)


def current_log_fields() -> dict[str, Any]:
    return dict(_fields.get() or {})
