"""The HTTP client peers are called with: redirects followed the way an A2A call needs.

Bots built on Microsoft's sample answer ``POST /a2a`` with 307 to ``/a2a/``; other hosts move a card.
httpx on its own turns a POST answered with 301 or 302 into a GET (which no JSON-RPC endpoint
answers) and keeps ``Authorization`` on an http-to-https hop to another origin. This client keeps the
method and body for every redirect but 303, credentials never leave the origin the caller
addressed (a peer's bearer token is for that peer alone), and https never becomes http. It
overrides httpx's redirect hooks (stable since httpx 0.18, pinned in pyproject.toml) so proxies,
pooling and instrumentation stay httpx's own.
"""

from __future__ import annotations

import httpx

CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization", "x-a2a-notification-token")
MAX_REDIRECTS = 5


def origin_of(url: httpx.URL | str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    return parsed.scheme, parsed.host, parsed.port


def same_origin(a: httpx.URL, b: httpx.URL) -> bool:
    return origin_of(a) == origin_of(b)


class PeerHTTPClient(httpx.AsyncClient):
    def __init__(self, *, timeout: httpx.Timeout, limits: httpx.Limits) -> None:
        super().__init__(timeout=timeout, limits=limits, follow_redirects=True, max_redirects=MAX_REDIRECTS)

    def _redirect_method(self, request: httpx.Request, response: httpx.Response) -> str:
        if response.status_code == httpx.codes.SEE_OTHER and request.method != "HEAD":
            return "GET"
        return request.method

    def _redirect_url(self, request: httpx.Request, response: httpx.Response) -> httpx.URL:
        url = super()._redirect_url(request, response)
        if request.url.scheme == "https" and url.scheme != "https":
            # A handoff carries the user's name and ids: it never goes on in clear.
            raise httpx.UnsupportedProtocol(
                f"refusing a redirect from https to {url.scheme}", request=request
            )
        return url

    def _redirect_headers(self, request: httpx.Request, url: httpx.URL, method: str) -> httpx.Headers:
        headers = super()._redirect_headers(request, url, method)
        if not same_origin(url, request.url):
            for name in CREDENTIAL_HEADERS:
                headers.pop(name, None)
        return headers
