"""Telling a caller that its handoff task ended: an A2A push notification, sent by the receiver.

The caller names a URL and a token for the task when it sends the handoff; they are kept with the
handoff in the ledger (and in a2a-sdk's push-configuration store, where a caller may add more
later). When the task ends (in whichever replica finishes it) the
ended task is posted to that URL as a ``StreamResponse``, with the caller's token in
``X-A2A-Notification-Token`` and, when peers authenticate, a bearer token signed by this bot for
that caller, as on ``/a2a``. A URL is only posted to if its origin is the calling peer's own (its
configured URL or its card's interface), over https, or loopback in local development; redirects
are not followed: a caller cannot make the bot call anywhere else. Delivery is retried briefly; a
push that never arrives is covered by the caller polling ``GetTask``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx
import structlog
from a2a.server.tasks import PushNotificationConfigStore
from a2a.types import StreamResponse, Task
from google.protobuf.json_format import MessageToDict
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from a2a_bridge.auth import TokenSigner
from a2a_bridge.policy import LOOPBACK_HOSTS
from a2a_bridge.redirects import origin_of

log = structlog.get_logger(__name__)

NOTIFICATION_TOKEN_HEADER = "X-A2A-Notification-Token"


@dataclass(frozen=True)
class PushTarget:
    """Where, and with which token, the end of a handoff's task is to be posted."""

    url: str
    token: str

    def to_json(self) -> str:
        return json.dumps({"url": self.url, "token": self.token})

    @classmethod
    def from_json(cls, text: str | None) -> PushTarget | None:
        if not text:
            return None
        data = json.loads(text)
        return cls(url=str(data["url"]), token=str(data.get("token") or ""))


class PushOrigins:
    """Where a caller's pushes may go: that peer's own origins (and loopback, if allowed)."""

    def __init__(self, urls_of: Callable[[str], Iterable[str]], *, allow_loopback: bool) -> None:
        self._urls_of = urls_of
        self._allow_loopback = allow_loopback

    def allows(self, url: str, caller: str) -> bool:
        try:
            origin = origin_of(url)
        except httpx.InvalidURL:
            return False
        if origin[0] not in ("http", "https"):
            return False
        if self._allow_loopback and origin[1] in LOOPBACK_HOSTS:
            return True
        if origin[0] != "https" or not caller:
            return False
        return origin in {origin_of(peer) for peer in self._urls_of(caller)}


class PushNotifier:
    def __init__(
        self,
        *,
        configs: PushNotificationConfigStore,
        http: httpx.AsyncClient,
        origins: PushOrigins,
        signer: TokenSigner | None = None,
        attempts: int = 3,
    ) -> None:
        self._configs = configs
        self._http = http
        self._origins = origins
        self._signer = signer
        self._attempts = attempts

    async def push(self, task: Task, caller: str, requested: PushTarget | None = None) -> None:
        """Post the task to the target the handoff asked for and to any set later through the
        A2A push-configuration methods. Best effort by design: a failure is logged; the caller's
        polling covers it."""
        targets = [requested] if requested is not None else []
        try:
            stored = await self._configs.get_info_for_dispatch(task.id)
        except Exception:
            log.exception("push_config_unreadable", a2a_task_id=task.id)
            stored = []
        targets += [PushTarget(c.url, c.token) for c in stored if all(c.url != t.url for t in targets)]
        body = MessageToDict(StreamResponse(task=task))
        for target in targets:
            if not self._origins.allows(target.url, caller):
                log.warning("push_refused", a2a_task_id=task.id, reason="URL is not on the caller's origin")
                continue
            headers = {NOTIFICATION_TOKEN_HEADER: target.token} if target.token else {}
            if self._signer is not None and caller:
                headers["Authorization"] = f"Bearer {self._signer.token_for(caller)}"
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(httpx.TransportError),
                    wait=wait_exponential(multiplier=0.2, max=2.0),
                    stop=stop_after_attempt(self._attempts),
                    reraise=True,
                ):
                    with attempt:
                        response = await self._http.post(
                            target.url, json=body, headers=headers, follow_redirects=False
                        )
                response.raise_for_status()
            except httpx.HTTPError as error:
                status = error.response.status_code if isinstance(error, httpx.HTTPStatusError) else None
                log.warning("push_failure", a2a_task_id=task.id, status=status, reason=type(error).__name__)
                continue
            log.info("push_sent", a2a_task_id=task.id, state=task.status.state)
