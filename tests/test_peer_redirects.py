"""Peers' redirects are followed the way an A2A call needs: the method and body kept (but for 303),
and the bearer token never sent to an origin other than the one the call was addressed to."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from a2a_bridge.redirects import PeerHTTPClient, same_origin
from tests.harness import LoopbackServer


@dataclass
class Seen:
    method: str
    path: str
    authorization: str | None
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Host:
    """A loopback host that redirects ``/from/<status>`` to ``target`` and records ``/to``."""

    target: str = ""
    seen: list[Seen] = field(default_factory=list)

    def app(self) -> Starlette:
        async def redirect(request: Request) -> Response:
            return RedirectResponse(self.target, status_code=int(request.path_params["status"]))

        async def land(request: Request) -> Response:
            body = await request.body()
            self.seen.append(
                Seen(request.method, request.url.path, request.headers.get("authorization"), body)
            )
            return JSONResponse({"ok": True})

        async def loop(request: Request) -> Response:
            return RedirectResponse("/loop", status_code=307)

        return Starlette(
            routes=[
                Route("/from/{status:int}", redirect, methods=["GET", "POST"]),
                Route("/to", land, methods=["GET", "POST"]),
                Route("/loop", loop, methods=["GET", "POST"]),
            ]
        )


@contextlib.asynccontextmanager
async def hosts() -> AsyncIterator[tuple[Host, Host, str, str]]:
    first, second = Host(), Host()
    a, b = LoopbackServer(first.app()).start(), LoopbackServer(second.app()).start()
    try:
        yield first, second, a.url, b.url
    finally:
        await a.stop()
        await b.stop()


def client() -> PeerHTTPClient:
    return PeerHTTPClient(timeout=httpx.Timeout(5.0), limits=httpx.Limits())


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirected_post_stays_a_post_with_its_body_and_token_on_the_same_origin(status: int) -> None:
    async with hosts() as (first, _, a, _b), client() as http:
        first.target = f"{a}/to"
        response = await http.post(f"{a}/from/{status}", content=b'{"jsonrpc":"2.0"}', headers=_bearer())
        assert response.status_code == 200
        [seen] = first.seen
        assert (seen.method, seen.body, seen.authorization) == ("POST", b'{"jsonrpc":"2.0"}', "Bearer t0ken")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_the_token_is_never_sent_to_another_origin(status: int) -> None:
    async with hosts() as (first, second, a, b), client() as http:
        first.target = f"{b}/to"
        await http.post(f"{a}/from/{status}", content=b"{}", headers=_bearer())
        [seen] = second.seen
        assert seen.authorization is None
        assert "x-a2a-notification-token" not in seen.headers
        assert first.seen == []


async def test_303_means_fetch_the_answer_with_get() -> None:
    async with hosts() as (first, _, a, _b), client() as http:
        first.target = f"{a}/to"
        await http.post(f"{a}/from/303", content=b"{}")
        [seen] = first.seen
        assert (seen.method, seen.body) == ("GET", b"")


async def test_a_peer_that_keeps_redirecting_is_given_up_on() -> None:
    async with hosts() as (_, _second, a, _b), client() as http:
        with pytest.raises(httpx.TooManyRedirects):
            await http.post(f"{a}/loop", content=b"{}")


def _bearer() -> dict[str, str]:
    return {"Authorization": "Bearer t0ken", "X-A2A-Notification-Token": "n0tice"}


def test_an_upgrade_to_https_is_another_origin_too() -> None:
    assert not same_origin(httpx.URL("http://bob.example/a2a"), httpx.URL("https://bob.example/a2a"))
    assert not same_origin(httpx.URL("https://bob.example/a2a"), httpx.URL("https://bob.example:8443/a2a"))
    assert same_origin(httpx.URL("https://bob.example/a2a"), httpx.URL("https://bob.example/a2a/"))
