"""Peers' agent cards: fetched, checked, cached, and fetched again when old or after a failed call.

Every peer shares the process's one pooled ``httpx.AsyncClient``. A card is fetched once and cached;
it is fetched again when it is older than ``max_age`` or when a call to that peer failed. A peer whose
card cannot be fetched is simply absent from ``available()`` (and so from the model's instructions
and the tool's enum) until a later refresh succeeds; nothing waits for peers at start-up. After a
failed fetch the next turn tries again at once (the peer may just have come up); further failures
back off (0.5 s, 1 s, 2 s... up to ``retry_after``) so a peer that stays down costs turns little.

A configured peer URL may be the peer's base URL, its ``/a2a`` endpoint or its card's URL: the card
is looked for at the root well-known path and under ``/a2a`` (where bots built on Microsoft's sample
serve it), and the place that answered is tried first next time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field

import httpx
import structlog
from a2a.client import A2ACardResolver, AgentCardResolutionError, Client, ClientConfig
from a2a.client import create_client as create_a2a_client
from a2a.client.interceptors import ClientCallInterceptor
from a2a.types import AgentCard
from a2a.utils.errors import A2AError
from a2a.utils.signing import SignatureVerificationError

from a2a_bridge.card_signing import CardKeyError

log = structlog.get_logger(__name__)


WELL_KNOWN_CARD = "/.well-known/agent-card.json"
A2A_SEGMENT = "/a2a"


def card_locations(peer_url: str) -> list[str]:
    """Where a peer configured as ``peer_url`` may serve its card, most likely first."""
    url = httpx.URL(peer_url)
    path = url.path.rstrip("/")
    if path.endswith(".json") or "/.well-known/" in path:
        return [str(url)]
    origin = str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")
    if path.endswith(A2A_SEGMENT):
        return [origin + path + WELL_KNOWN_CARD, origin + path[: -len(A2A_SEGMENT)] + WELL_KNOWN_CARD]
    return [origin + path + WELL_KNOWN_CARD, origin + path + A2A_SEGMENT + WELL_KNOWN_CARD]


@dataclass(frozen=True)
class PeerProfile:
    """What the model is told about a peer, read off its live card."""

    name: str
    description: str
    skills: tuple[tuple[str, str], ...]
    base_url: str


@dataclass(frozen=True)
class CardPolicy:
    max_age: float = 300.0
    retry_after: float = 5.0
    timeout: float = 3.0


@dataclass
class CachedPeer:
    """One configured peer URL and what is known of it now."""

    base_url: str
    card: AgentCard | None = None
    client: Client | None = None
    fetched_at: float = 0.0
    last_attempt_at: float | None = None
    failures: int = 0
    stale: bool = False
    card_url: str | None = None
    """Where the card was last found."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def name(self) -> str:
        return self.card.name if self.card is not None else self.base_url

    def profile(self) -> PeerProfile | None:
        if self.card is None:
            return None
        return PeerProfile(
            name=self.card.name,
            description=self.card.description,
            skills=tuple((skill.name, skill.description) for skill in self.card.skills),
            base_url=self.base_url,
        )


class PeerCards:
    def __init__(
        self,
        base_urls: Sequence[str],
        http: httpx.AsyncClient,
        *,
        self_name: str,
        policy: CardPolicy,
        interceptors: Sequence[ClientCallInterceptor] = (),
        verifier: Callable[[AgentCard], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._peers = [CachedPeer(base_url=url) for url in base_urls]
        self._http = http
        self._self_name = self_name
        self._policy = policy
        self._interceptors = list(interceptors)
        self._verifier = verifier
        self._clock = clock
        self._background: set[asyncio.Task[None]] = set()

    @property
    def configured(self) -> list[CachedPeer]:
        return list(self._peers)

    async def refresh(self, *, wait_for_old: bool = True) -> None:
        """Fetch every card that is missing or stale, concurrently; failures only log.

        ``wait_for_old=False`` (a turn on its way to the model): a card that is only past its
        ``max_age`` is read again in the background while this turn uses it, so no user waits on a
        peer's card server every few minutes. A peer with no card, or whose card a failed call
        marked stale (it may have moved, or be down), is still waited for."""
        due = [peer for peer in self._peers if self._due(peer)]
        if not wait_for_old:
            old = [peer for peer in due if peer.card is not None and not peer.stale]
            for peer in old:
                self._in_background(self._refresh(peer))
            due = [peer for peer in due if peer not in old]
        await asyncio.gather(*(self._refresh(peer) for peer in due))

    def _in_background(self, work: Coroutine[object, object, None]) -> None:
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def available(self) -> list[PeerProfile]:
        seen: set[str] = set()
        unique = []
        for peer in self._peers:
            profile = peer.profile()
            if profile is None or profile.name in seen or profile.name == self._self_name:
                continue
            seen.add(profile.name)
            unique.append(profile)
        return unique

    def find(self, name: str) -> CachedPeer | None:
        return next((peer for peer in self._peers if peer.card is not None and peer.card.name == name), None)

    def is_fresh(self, peer: CachedPeer) -> bool:
        return (
            peer.card is not None
            and not peer.stale
            and self._clock() - peer.fetched_at < self._policy.max_age
        )

    def card_age(self, peer: CachedPeer) -> float | None:
        return round(self._clock() - peer.fetched_at, 1) if peer.card is not None else None

    def _due(self, peer: CachedPeer) -> bool:
        if self.is_fresh(peer):
            return False
        if peer.card is None and peer.last_attempt_at is not None:
            backoff = (
                0.0 if peer.failures <= 1 else min(self._policy.retry_after, 0.5 * 2 ** (peer.failures - 2))
            )
            return self._clock() - peer.last_attempt_at >= backoff
        return True

    async def _fetch_card(self, peer: CachedPeer) -> tuple[AgentCard, str]:
        """The first place that serves a card; the last error if none does."""
        candidates = card_locations(peer.base_url)
        if peer.card_url in candidates:
            candidates.remove(peer.card_url)
            candidates.insert(0, peer.card_url)
        error: Exception | None = None
        for url in candidates:
            resolver = A2ACardResolver(self._http, url, agent_card_path="")
            try:
                return await resolver.get_agent_card(signature_verifier=self._verifier), url
            except AgentCardResolutionError as not_here:
                if isinstance(not_here.__cause__, httpx.RequestError):
                    raise  # the host is down or slow: the other path would not fare better
                error = not_here
        assert error is not None
        raise error

    async def _refresh(self, peer: CachedPeer) -> None:
        if peer.lock.locked():
            async with peer.lock:  # a fetch is under way: its result is this one's
                return
        async with peer.lock:
            peer.last_attempt_at = self._clock()
            try:
                async with asyncio.timeout(self._policy.timeout):
                    card, peer.card_url = await self._fetch_card(peer)
                client = await create_a2a_client(
                    card,
                    client_config=ClientConfig(streaming=False, httpx_client=self._http),
                    interceptors=list(self._interceptors),
                )
            except (
                TimeoutError,
                A2AError,
                httpx.HTTPError,
                ValueError,
                SignatureVerificationError,
                CardKeyError,
            ) as error:
                # A peer that is not up yet at the first try (both bots starting together) is normal:
                # said at INFO; a peer that stays away, or goes away, is a WARNING.
                level = log.info if peer.failures == 0 and peer.fetched_at == 0.0 else log.warning
                level("peer_card_unavailable", peer_url=peer.base_url, reason=type(error).__name__)
                peer.card, peer.client = None, None
                peer.failures += 1
                return
            is_new = peer.card is None or peer.card.name != card.name
            peer.card, peer.client = card, client
            peer.fetched_at, peer.stale, peer.failures = self._clock(), False, 0
            if is_new:
                log.info("peer_card_resolved", peer=card.name, peer_url=peer.base_url)
