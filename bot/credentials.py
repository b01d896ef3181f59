"""Whether this bot can get a Bot Framework token now: the question to ask when a send fails oddly.

The Teams SDK acquires tokens inside each connector call; a rejected or expired secret surfaces
there as a ``ValueError`` (or an MSAL or network error), not as an HTTP error. Asking once more,
directly, tells a credential problem (worth waiting out: an operator may fix it) from any other.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import structlog
from microsoft_teams.apps import App

from bot.config import Settings

log = structlog.get_logger(__name__)

_AADSTS = re.compile(r"AADSTS\d{4,6}")
# What the Teams SDK keeps of Entra's answer: its OAuth error code (``invalid_client``, ...).
_OAUTH_ERROR = re.compile(r"[a-z_]{3,40}")


# Readiness probes ask often; Entra is asked at most this often (a token, once had, is cached by MSAL).
HEALTH_CACHE_SECONDS = 15.0


def app_identity(settings: Settings) -> dict[str, Any]:
    """The Teams SDK ``App`` options that say who the bot is and in which cloud: passed explicitly,
    so the SDK reads none of them from the process environment (an env file's CLOUD counts)."""
    return {
        "client_id": settings.client_id,
        "client_secret": settings.client_secret.get_secret_value() if settings.client_secret else None,
        "tenant_id": settings.tenant_id,
        # The SDK's rule: CLIENT_ID alone is a user-assigned managed identity whose id is CLIENT_ID;
        # another id (or "system") is a federated credential backed by that managed identity.
        "managed_identity_client_id": (
            settings.managed_identity_client_id if settings.app_type != "UserAssignedMSI" else None
        ),
        "cloud": settings.cloud_profile.sdk_environment(),
    }


class BotCredential:
    def __init__(
        self,
        app: App,
        *,
        configured: bool,
        on_failure: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._app = app
        self._configured = configured
        self._on_failure = on_failure
        self._clock = clock
        self._checked: tuple[float, str | None] | None = None

    @property
    def configured(self) -> bool:
        return self._configured

    async def problem(self) -> str | None:
        """None when a token can be had (or none is needed); else a loggable reason, never a secret."""
        if not self._configured:
            return None
        try:
            token = await self._app.token_provider.get_app_token()
            found = None if token is not None else "no token issued"
        except Exception as error:  # MSAL, the network, the SDK's ValueError: all "no token"
            found = reason_of(error)
        if found is not None:
            log.error("bot_token_unavailable", reason=found)
            if self._on_failure is not None:
                self._on_failure(found)
        self._checked = (self._clock(), found)
        return found

    async def health(self) -> str | None:
        """``problem()``, answered from the last check when it is recent (readiness probes)."""
        if self._checked is not None and self._clock() - self._checked[0] < HEALTH_CACHE_SECONDS:
            return self._checked[1]
        return await self.problem()


def reason_of(error: BaseException) -> str:
    """Entra's error code when there is one (AADSTS7000215, or the OAuth code ``invalid_client``
    that the Teams SDK keeps of it), else the kind of error."""
    text = str(error)
    found = _AADSTS.search(text)
    if found:
        return found.group(0)
    return text if _OAUTH_ERROR.fullmatch(text) else type(error).__name__
