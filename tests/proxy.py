"""A round-robin HTTP load balancer on loopback, in front of a bot's replicas: each request goes to
the next replica in turn, as a cloud load balancer without session affinity would send it."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


class RoundRobinProxy:
    def __init__(self, backends: list[str]) -> None:
        self.backends = backends
        self.routed: list[str] = []
        """The replica each request went to, in order."""
        self.paths: list[tuple[str, str]] = []
        """(replica, path) of each request, in order: peers' card fetches come through here too."""
        self._next = itertools.cycle(range(len(backends)))
        self._http = httpx.AsyncClient(timeout=60, trust_env=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        backend = self.backends[next(self._next)]
        self.routed.append(backend)
        self.paths.append((backend, request.url.path))
        target = f"{backend}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
        try:
            upstream = await self._http.request(
                request.method,
                target,
                content=await request.body(),
                headers={k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP},
            )
            response = Response(
                upstream.content,
                status_code=upstream.status_code,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP},
            )
        except httpx.TransportError:
            response = Response("replica unreachable", status_code=502)  # a dead replica, as a LB says it
        await response(scope, receive, send)

    async def aclose(self) -> None:
        await self._http.aclose()
