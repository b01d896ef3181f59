"""Wiring: one FastAPI app carrying the three surfaces, and everything they share, built from Settings."""

from __future__ import annotations

import asyncio
import contextlib
import html
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import structlog
from a2a.types import AgentCard
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, Response
from microsoft_teams.apps import App, FastAPIAdapter
from microsoft_teams.common.http import ClientOptions
from prometheus_client import CONTENT_TYPE_LATEST

from a2a_bridge.admission import HandoffAdmission
from a2a_bridge.agent_card import build_agent_card
from a2a_bridge.auth import PeerTokenInterceptor, SharedSecretSigner, SharedSecretVerifier
from a2a_bridge.card_cache import CardPolicy, PeerCards
from a2a_bridge.card_signing import CardKeyError, card_verifier, read_public_keys, sign_card
from a2a_bridge.executor import HandoffAgentExecutor
from a2a_bridge.jobs import HandoffJobs
from a2a_bridge.limits import RateLimiter
from a2a_bridge.peer_client import CallPolicy, PeerClient
from a2a_bridge.policy import HandoffPolicy
from a2a_bridge.push import PushNotifier, PushOrigins
from a2a_bridge.redirects import PeerHTTPClient
from a2a_bridge.server import A2ADoor, a2a_routes
from bot.agent import BotAgent
from bot.app_install import installer_for
from bot.config import ConfigError, Settings
from bot.connector import ConnectorClients
from bot.credentials import BotCredential, app_identity
from bot.greeter import TeamsGreeter
from bot.handoff_tracker import HandoffTracker, TrackerPolicy
from bot.handoffs import HandoffSender
from bot.inbound import ActivityGate, Authenticate
from bot.inbox import TurnInbox
from bot.model_client import build_chat_client
from bot.notices import NoticeBoard
from bot.observability import BotMetrics, tracing_is_on
from bot.pacing import OutboundPacer
from bot.persona import Persona, PersonaSource, Words
from bot.prompts import Prompts
from bot.replies import Replies
from bot.speaker import Speaker
from bot.store import Store
from bot.streaming import AnswerStream
from bot.teams import TeamsSurface
from bot.teams_keys import GuardedTokenValidator, SigningKeys, guard_token_validation
from bot.turns import TurnRunner

log = structlog.get_logger(__name__)


@dataclass
class BotService:
    settings: Settings
    web: FastAPI
    store: Store
    peers: PeerClient
    agent: BotAgent
    turns: TurnRunner
    inbox: TurnInbox
    credential: BotCredential
    metrics: BotMetrics
    jobs: HandoffJobs
    tracker: HandoffTracker
    persona: Persona
    signing_keys: list[SigningKeys]
    """Teams' token-signing keys, fetched off the event loop (empty when Teams is not authenticated)."""


@asynccontextmanager
async def running_bot(settings: Settings, env_file: str | Path | None = None) -> AsyncIterator[BotService]:
    """Build every part of one bot instance; close what needs closing on the way out.

    ``env_file``: the file the settings came from, read again when the persona is reloaded."""
    source = PersonaSource(settings, Path(env_file) if env_file is not None else None)
    persona = Persona(
        bot_name=settings.bot_name,
        words=Words(description=settings.bot_description, prompts=Prompts.load(source.prompts_dir)),
        source=source,
    )
    metrics = BotMetrics()
    store = await Store.open(
        settings.resolved_state_url,
        bot_name=settings.bot_name,
        handoff_lease_seconds=settings.handoff_lease_seconds,
        turn_lease_seconds=settings.turn_lease_seconds,
        replica_id=settings.resolved_replica_id,
    )
    http = PeerHTTPClient(
        timeout=httpx.Timeout(settings.peer_timeout_seconds, connect=3.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
    )
    graph_http = httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=3.0))
    try:
        service = await _build(settings, persona, metrics, store, http, graph_http)
        # Finish what a previous run (or a dead replica) left: handoffs received, handoffs sent.
        sweeping = asyncio.create_task(
            service.jobs.sweep_forever(every=max(settings.handoff_lease_seconds / 2, 0.2)),
            name="handoff-sweep",
        )
        await service.tracker.resume()
        # Turns a killed run of this replica accepted and never ended: run before serving anew.
        await service.inbox.resume()
        keeping_inbox = asyncio.create_task(service.inbox.keep_forever(), name="inbox-leases")
        watching = (
            asyncio.create_task(persona.watch(), name="persona-watch") if settings.persona_watch else None
        )
        keeping_keys = [
            asyncio.create_task(keys.refresh_forever(), name="teams-signing-keys")
            for keys in service.signing_keys
        ]
        try:
            yield service
        finally:
            for task in [*keeping_keys, *([watching] if watching is not None else [])]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await service.turns.drain(settings.shutdown_grace_seconds)
            # Leases are kept while turns drain: no other replica takes over a turn still finishing.
            keeping_inbox.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeping_inbox
            await service.jobs.drain(settings.shutdown_grace_seconds)
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping
            await service.tracker.close()
    finally:
        await graph_http.aclose()
        await http.aclose()
        await store.close()


async def _build(
    settings: Settings,
    persona: Persona,
    metrics: BotMetrics,
    store: Store,
    http: httpx.AsyncClient,
    graph_http: httpx.AsyncClient,
) -> BotService:
    secret = settings.a2a_auth_secret.get_secret_value() if settings.a2a_auth_secret else None
    signer = SharedSecretSigner(secret, settings.bot_name) if secret else None
    peers = _peer_client(settings, http, signer, metrics)
    web = FastAPI(
        title=f"{settings.bot_name} bot",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # FastAPI's own OpenTelemetry spans only when this process traces; metrics are Prometheus'.
        telemetry={"tracing": tracing_is_on(), "metrics": False, "logs": False},
    )
    teams = App(
        http_server_adapter=FastAPIAdapter(app=web),
        **app_identity(settings),
        dangerously_allow_unauthenticated_requests=settings.dangerously_allow_unauthenticated_requests,
        client=ClientOptions(timeout=settings.connector_timeout_seconds),
    )
    apis = ConnectorClients(teams)
    speaker = Speaker(settings.bot_name, named=settings.names_speakers)
    pacer = OutboundPacer(
        per_tenant=settings.connector_rate_per_tenant,
        per_conversation=settings.connector_rate_per_conversation,
        tenant_burst=settings.connector_burst_per_tenant,
        conversation_burst=settings.connector_burst_per_conversation,
    )
    tracker = HandoffTracker(
        bot_name=settings.bot_name,
        peers=peers,
        sent=store.sent,
        notices=NoticeBoard(apis=apis, speaker=speaker, pacer=pacer, observe=metrics.observe_connector),
        prompts=persona,
        policy=TrackerPolicy(
            push_url=f"{settings.a2a_url}/push",
            wait_seconds=settings.handoff_wait_seconds,
            poll_seconds=settings.handoff_poll_seconds,
            lost_after_seconds=2 * settings.peer_timeout_seconds,
        ),
        metrics=metrics.a2a,
    )
    sender = HandoffSender(
        bot_name=settings.bot_name,
        peers=peers,
        tracker=tracker,
        consent=store.consent,
        prompts=persona,
        consent_mode=settings.handoff_consent,
    )
    agent = BotAgent(
        persona=persona,
        client=build_chat_client(settings, peers.available, lambda: persona.description),
        peers=peers,
        history=store.history,
        sender=sender,
        middleware=[metrics.model_timer(settings.model_provider)],
    )
    turns = TurnRunner()
    metrics.turns_in_flight.set_function(lambda: turns.in_flight)
    credential = BotCredential(
        teams,
        configured=settings.client_id is not None,
        on_failure=lambda reason: metrics.token_failures.labels(reason).inc(),
    )
    surface = TeamsSurface(
        bot_name=settings.bot_name,
        agent=agent,
        sender=sender,
        store=store,
        persona=persona,
        turns=turns,
        replies=Replies(apis=apis, speaker=speaker, pacer=pacer, observe=metrics.observe_connector),
        credential=credential,
        tenant_allowlist=settings.tenant_allowlist,
        streams=(
            (
                lambda to: AnswerStream(
                    apis=apis,
                    to=to,
                    speaker=speaker,
                    pacer=pacer,
                    informative=persona.render("stream_informative", bot_name=settings.bot_name),
                    observe=metrics.observe_connector,
                )
            )
            if settings.stream_answers
            else None
        ),
    )
    surface.register(teams)
    await teams.initialize()
    guard = guard_token_validation(teams, http, tenant_id=settings.tenant_id)
    jobs = HandoffJobs(
        receiver=settings.bot_name,
        ledger=store.handoffs,
        delivery=TeamsGreeter(
            apis=apis,
            agent=agent,
            bot_name=settings.bot_name,
            speaker=speaker,
            bot_id=settings.teams_bot_id,
            pacer=pacer,
            installer=installer_for(settings, teams, graph_http) if settings.install_app_for_users else None,
            chat_url=_chat_url(settings),
            observe=metrics.observe_connector,
        ),
        task_store=store.a2a_tasks,
        pusher=PushNotifier(
            configs=store.a2a_push_configs,
            http=http,
            origins=PushOrigins(peers.urls_of, allow_loopback=settings.local_development),
            signer=signer,
        ),
        metrics=metrics.a2a,
    )
    admission = HandoffAdmission(
        policy=HandoffPolicy(
            receiver_name=settings.bot_name,
            max_hops=settings.max_handoff_hops,
            service_url_hosts=tuple(host.lower() for host in settings.service_url_allowlist),
            allow_loopback_service_urls=settings.local_development,
            tenant_allowlist=tuple(settings.tenant_allowlist),
        ),
        ledger=store.handoffs,
        metrics=metrics.a2a,
    )
    executor = HandoffAgentExecutor(admission=admission, jobs=jobs, consultant=agent)
    door = A2ADoor(
        max_body_bytes=settings.max_request_bytes,
        verifier=SharedSecretVerifier(secret, settings.bot_name) if secret else None,
        limiter=RateLimiter(settings.a2a_rate_limit_per_minute),
        # Replicas share one database: a token used at one must be refused at the others.
        seen_tokens=store.used_tokens if store.shared else None,
        trace_requests=settings.otel_traces_exporter != "none",
    )
    web.router.routes.extend(
        a2a_routes(
            card=_live_card(settings, secret, persona),
            executor=executor,
            admission=admission,
            jobs=jobs,
            door=door,
            task_store=store.a2a_tasks,
            push_configs=store.a2a_push_configs,
            push_receiver=tracker,
        )
    )
    web.add_middleware(
        ActivityGate,
        max_bytes=settings.max_request_bytes,
        authenticate=_inbound_check(guard, open_door=settings.dangerously_allow_unauthenticated_requests),
    )
    service = BotService(
        settings=settings,
        web=web,
        store=store,
        peers=peers,
        agent=agent,
        turns=turns,
        inbox=surface.inbox,
        credential=credential,
        metrics=metrics,
        jobs=jobs,
        tracker=tracker,
        persona=persona,
        signing_keys=guard.key_sets() if guard is not None else [],
    )
    _add_health_routes(service)
    _add_pages(service)
    return service


def _inbound_check(guard: GuardedTokenValidator | None, *, open_door: bool) -> Authenticate | None:
    """The SDK's own inbound token check, for the activities the gate answers itself."""
    if open_door:
        return None

    async def authenticate(token: str, service_url: str | None) -> bool:
        if guard is None:
            return False  # as the SDK: no credentials configured, nothing is authenticated
        try:
            await guard.validate_token(token, service_url)
        except Exception as error:
            log.info("inbound_token_refused", reason=type(error).__name__)
            return False
        return True

    return authenticate


def _chat_url(settings: Settings) -> str | None:
    """Opens the user's 1:1 chat with this bot in Teams (needs the bot's app id)."""
    if not settings.client_id:
        return None
    return f"{settings.cloud_profile.teams_web}/l/chat/0/0?users=28:{settings.client_id}"


def _peer_client(
    settings: Settings, http: httpx.AsyncClient, signer: SharedSecretSigner | None, metrics: BotMetrics
) -> PeerClient:
    cards = PeerCards(
        settings.peer_urls,
        http,
        self_name=settings.bot_name,
        policy=CardPolicy(
            max_age=settings.peer_card_max_age_seconds, retry_after=settings.peer_retry_seconds
        ),
        interceptors=[PeerTokenInterceptor(signer)] if signer else [],
        verifier=peer_card_verifier(settings),
    )
    peers = PeerClient(cards, policy=CallPolicy(timeout=settings.peer_timeout_seconds), metrics=metrics.a2a)
    metrics.a2a.watch_breakers(peers.breaker_states)
    metrics.a2a.know_peers(lambda: [peer.name for peer in peers.available()])
    return peers


def _live_card(settings: Settings, secret: str | None, persona: Persona) -> Callable[[], AgentCard]:
    """The card for the persona's current description: made (and signed) once per description."""
    path = settings.agent_card_signing_key_file
    try:
        signing_key = path.read_bytes() if path is not None else None
    except OSError:
        raise ConfigError(f"AGENT_CARD_SIGNING_KEY_FILE: {path} cannot be read") from None
    made: dict[str, AgentCard] = {}

    def card_for(description: str) -> AgentCard:
        card = build_agent_card(
            name=settings.bot_name,
            description=description,
            a2a_url=settings.a2a_url,
            requires_bearer_token=secret is not None,
        )
        if signing_key is None:
            return card
        try:
            return sign_card(card, private_key_pem=signing_key, kid=settings.bot_name)
        except CardKeyError as error:
            raise ConfigError(f"AGENT_CARD_SIGNING_KEY_FILE: {error}") from None

    def current() -> AgentCard:
        description = persona.description
        if description not in made:
            card = card_for(description)
            made.clear()
            made[description] = card
        return made[description]

    current()  # a bad signing key stops start-up, not a card request
    return current


def peer_card_verifier(settings: Settings) -> Callable[[AgentCard], None] | None:
    if not settings.peer_card_public_key_files:
        return None
    try:
        return card_verifier(read_public_keys(settings.peer_card_public_key_files))
    except CardKeyError as error:
        raise ConfigError(f"PEER_CARD_PUBLIC_KEY_FILES: {error}") from None


def _add_pages(service: BotService) -> None:
    """The privacy and terms pages the Teams app package links to, from prompts/ (live with the
    persona, so an edit shows without a restart)."""
    for page in ("privacy", "terms"):

        async def serve(page: str = page) -> HTMLResponse:
            text = service.persona.render(
                page,
                bot_name=service.settings.bot_name,
                developer_name=service.settings.manifest_developer_name,
            )
            return HTMLResponse(_html_page(text))

        service.web.add_api_route(f"/{page}", serve, methods=["GET"], include_in_schema=False)


def _html_page(text: str) -> str:
    title, _, body = text.partition("\n")
    paragraphs = "".join(f"<p>{html.escape(part.strip())}</p>" for part in body.split("\n\n") if part.strip())
    return (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<body style="font-family: system-ui, sans-serif; max-width: 40em; margin: 2em auto; padding: 0 1em">'
        f"<h1>{html.escape(title)}</h1>{paragraphs}</body></html>"
    )


def _add_health_routes(service: BotService) -> None:
    web = service.web

    @web.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "bot": service.settings.bot_name}

    @web.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @web.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        store_ok = await service.store.ping()
        credential_problem = await service.credential.health()
        ready = store_ok and credential_problem is None
        body = {
            "ready": ready,
            "bot": service.settings.bot_name,
            "store": "ok" if store_ok else "unreachable",
            "credential": (
                f"no Bot Framework token: {credential_problem}"
                if credential_problem is not None
                else f"ok ({service.settings.credential_kind})"
                if service.credential.configured
                else service.settings.credential_kind
            ),
            "model": service.settings.model_provider,
            "model_note": (
                "offline: the built-in routing model; configure OPENAI_* or AZURE_OPENAI_* for real answers"
                if service.settings.model_provider == "offline"
                else "configured"
            ),
            "peers": service.peers.freshness(),
        }
        return JSONResponse(body, status_code=200 if ready else 503)
