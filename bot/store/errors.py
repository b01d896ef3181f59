"""The store's one error type: what callers catch instead of any database driver's exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import SQLAlchemyError


class StoreError(Exception):
    """The store cannot be opened or used; the message says what to fix, without the URL's password."""


def reason(error: BaseException) -> str:
    """The driver's own words (e.g. 'attempt to write a readonly database'), never the URL."""
    original = getattr(error, "orig", None) or error
    text = str(original).splitlines()[0] if str(original) else type(original).__name__
    return text[:200]


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Database failures leave the store as ``StoreError`` naming what was being done."""
    try:
        yield
    except (SQLAlchemyError, OSError) as error:
        raise StoreError(f"store: {what} failed: {reason(error)}") from error
