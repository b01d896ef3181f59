"""Limits on a request's head, enforced while it is read: uvicorn's httptools parser keeps
whatever header bytes it is sent, so an 8 MB header would be held in full before any handler (and
any 401) could refuse it.

``BoundedHttpToolsProtocol`` answers 431 and closes the connection as soon as a request's head
passes ``MAX_HEAD_BYTES`` or ``MAX_HEADERS`` fields.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 32 * 1024
MAX_HEADERS = 100
# Idle keep-alive connections are kept longer than HTTP clients keep theirs (httpx and uvicorn both
# default to 5 s), so the client side always closes first and never sends on a closing connection.
KEEP_ALIVE_SECONDS = 30


class _TooManyHeaders(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, counting the head as it arrives."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._in_head = True

    def data_received(self, data: bytes) -> None:
        reading_head = self._in_head
        super().data_received(data)
        if reading_head and self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self._refuse(f"request head over {MAX_HEAD_BYTES} bytes")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if len(self.headers) > MAX_HEADERS:
            # Answered here; the parser is then stopped, and uvicorn's own 400 for that finds the
            # connection closed.
            self._refuse(f"more than {MAX_HEADERS} header fields")
            raise _TooManyHeaders()

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _refuse(self, reason: str) -> None:
        self.logger.warning("request refused: %s", reason)
        body = f"Request header fields too large: {reason}".encode()
        self.transport.write(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body
        )
        self.transport.close()
