"""Bounds on a JSON body, checked on its bytes before any Python object is built from it.

Python's ``json`` builds whatever it is given: thousands of nested arrays end in RecursionError, a
5000-digit number in ValueError (the int-conversion limit), both deep inside whichever handler
parsed the body. Every body that reaches a handler here (``/a2a``, ``/api/messages``, the push
inbox) is first checked for valid UTF-8, nesting depth, number size and string length, with
byte-level scans that cost about a microsecond per kilobyte.
"""

from __future__ import annotations

import re

MAX_DEPTH = 32
MAX_NUMBER_DIGITS = 64
MAX_STRING_BYTES = 64 * 1024
MAX_CONTAINERS = 5_000
"""Objects and arrays in one body; the depth scan visits each of their brackets once."""

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_LONG_STRING = re.compile(rb'"(?:[^"\\]|\\.){%d,}' % MAX_STRING_BYTES, re.DOTALL)
_LONG_NUMBER = re.compile(rb"\d{%d,}" % (MAX_NUMBER_DIGITS + 1))
_BRACKET = re.compile(rb"[\[\]{}]")


class UnsafeJSON(ValueError):
    """The body is not JSON this service will parse; the message says why, in our words."""


def check_json_bytes(body: bytes) -> None:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise UnsafeJSON("the body is not valid UTF-8") from None
    if _LONG_STRING.search(body):
        raise UnsafeJSON(f"a string is longer than {MAX_STRING_BYTES} bytes")
    outside = _STRING.sub(b'""', body)
    if _LONG_NUMBER.search(outside):
        raise UnsafeJSON(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    if outside.count(b"[") + outside.count(b"{") > MAX_CONTAINERS:
        raise UnsafeJSON(f"more than {MAX_CONTAINERS} objects and arrays")
    depth = 0
    for bracket in _BRACKET.finditer(outside):
        if bracket.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise UnsafeJSON(f"nested deeper than {MAX_DEPTH} levels")
        else:
            depth -= 1
