"""``python -m bot routes``: which bot ends up answering each of a persona author's test questions.

Each case runs through this bot's real agent (its configured model, or the offline model) with the
peers' live cards, exactly as a user's turn would, except that the tools are recorded instead of
carried out: nothing goes to Teams or to any peer. With a candidate description (``--compare``) the
same cases run twice and the ones that moved are listed, so an author sees what a one-word change
does before shipping it.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx
import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from a2a_bridge.card_cache import CardPolicy, PeerCards, PeerProfile
from a2a_bridge.peer_client import PeerAnswer
from bot.agent import BotAgent
from bot.config import ConfigError, Settings
from bot.handoffs import HandedOff, HandoffDecision
from bot.identity import TurnIdentity
from bot.model_client import build_chat_client
from bot.persona import Persona, Words
from bot.prompts import PromptError, Prompts, prompts_directory
from bot.service import peer_card_verifier
from bot.store import Store, StoreError
from bot.store.history import HistoryStore

MISSING_PEER = "(no card)"


class RoutingError(Exception):
    """The cases or the candidate cannot be used; the message says which file and why."""


class RoutingCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=8000)
    """What the user writes."""
    expect: str = Field(min_length=1, max_length=30)
    """The bot that should end up answering it: this bot, or a peer, by name."""


class RoutingCases(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot: str | None = None
    """Whose cases these are; when given, it must be the bot the check runs as."""
    cases: list[RoutingCase] = Field(min_length=1)


def load_cases(path: Path) -> RoutingCases:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise RoutingError(f"{path}: cannot be read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise RoutingError(f"{path}: not valid YAML ({error})") from None
    try:
        return RoutingCases.model_validate(data)
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "the file"
        raise RoutingError(f"{path}: {where}: {problem['msg']}") from None


@dataclass(frozen=True)
class Candidate:
    """What ``--compare`` changes: this bot's description, a peer's, or the prompts."""

    label: str
    description: str | None = None
    peer: str | None = None
    """When set, ``description`` replaces this peer's card description rather than this bot's."""
    prompts: Prompts | None = None


def read_candidate(path: Path, bot_name: str) -> Candidate:
    """A text file is a description for this bot; an env file, one for the bot its BOT_NAME names
    (this bot or a peer); a directory, a prompts directory."""
    if path.is_dir():
        try:
            return Candidate(label=str(path), prompts=Prompts.load(path))
        except PromptError as error:
            raise RoutingError(str(error)) from None
    if not path.is_file():
        raise RoutingError(f"--compare: {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".env" or "BOT_DESCRIPTION=" in text:
        values = dotenv_values(path)
        description = (values.get("BOT_DESCRIPTION") or "").strip()
        if not description:
            raise RoutingError(f"--compare: {path} has no BOT_DESCRIPTION")
        named = (values.get("BOT_NAME") or bot_name).strip()
        peer = None if named == bot_name else named
        return Candidate(label=str(path), description=_checked(description, path), peer=peer)
    return Candidate(label=str(path), description=_checked(text.strip(), path))


def _checked(description: str, path: Path) -> str:
    if not 1 <= len(description) <= 500:
        raise RoutingError(
            f"--compare: {path}: a description is 1 to 500 characters (this one: {len(description)})"
        )
    return description


# The recorders: the agent's tools talk to these instead of the sender and the peers --------------


@dataclass
class Recording:
    handed_to: str | None = None
    asked: list[str] = field(default_factory=list)


class RecordingPeers:
    """The peers' live cards (a description replaced for a candidate); questions recorded, not sent."""

    def __init__(self, cards: PeerCards, *, replaced: dict[str, str], recording: Recording) -> None:
        self._cards = cards
        self._replaced = replaced
        self.recording = recording

    async def refresh(self, *, wait_for_old: bool = True) -> None:
        """The cards were fetched once before the run: every case sees the same peers."""

    def available(self) -> list[PeerProfile]:
        return [
            PeerProfile(
                name=peer.name,
                description=self._replaced.get(peer.name, peer.description),
                skills=peer.skills,
                base_url=peer.base_url,
            )
            for peer in self._cards.available()
        ]

    async def ask(self, peer_name: str, question: str) -> PeerAnswer:
        self.recording.asked.append(peer_name)
        return PeerAnswer(ok=True, text="(routing check: the question was not sent)")


class RecordingSender:
    """Takes the handoff tool's call and keeps it; hands nothing to anyone."""

    def __init__(self, bot_name: str, recording: Recording) -> None:
        self.bot_name = bot_name
        self.recording = recording

    async def request(self, identity: TurnIdentity, peer: str, summary: str) -> HandoffDecision:
        self.recording.handed_to = self.recording.handed_to or peer
        return HandedOff(peer, None)

    def tool_result(self, decision: HandedOff) -> str:
        return f"Connecting the user to {decision.peer}."

    def consent_question(self, peer: str) -> str:
        return f"May I connect you to {peer}?"


# Running the cases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseResult:
    case: RoutingCase
    chosen: str
    asked: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.chosen == self.case.expect


@dataclass(frozen=True)
class RoutingRun:
    label: str
    results: list[CaseResult]

    @property
    def correct(self) -> int:
        return sum(result.ok for result in self.results)

    @property
    def accuracy(self) -> float:
        return self.correct / len(self.results)


@dataclass(frozen=True)
class PeerStatus:
    url: str
    name: str | None


async def fetch_peers(settings: Settings, http: httpx.AsyncClient) -> tuple[PeerCards, list[PeerStatus]]:
    """The peers' cards, fetched once, the way the running bot fetches them."""
    cards = PeerCards(
        settings.peer_urls,
        http,
        self_name=settings.bot_name,
        policy=CardPolicy(max_age=3600.0, retry_after=0.0, timeout=settings.peer_timeout_seconds),
        verifier=peer_card_verifier(settings),
    )
    await cards.refresh()
    return cards, [
        PeerStatus(peer.base_url, peer.card.name if peer.card else None) for peer in cards.configured
    ]


async def run_cases(
    settings: Settings,
    words: Words,
    cards: PeerCards,
    cases: Sequence[RoutingCase],
    history: HistoryStore,
    *,
    label: str,
    replaced: dict[str, str] | None = None,
) -> RoutingRun:
    recording = Recording()
    peers = RecordingPeers(cards, replaced=replaced or {}, recording=recording)
    persona = Persona(bot_name=settings.bot_name, words=words)
    agent = BotAgent(
        persona=persona,
        client=build_chat_client(settings, peers.available, lambda: persona.description),
        peers=peers,
        history=history,
        sender=RecordingSender(settings.bot_name, recording),
    )
    results = []
    for case in cases:
        recording.handed_to, recording.asked = None, []
        identity = TurnIdentity(
            conversation_id=f"routing-check-{uuid.uuid4().hex}",
            user_name="Routing check",
            aad_object_id="routing-check",
            tenant_id="routing-check",
            service_url="https://routing-check.invalid",
        )
        await agent.run_user_turn(identity, case.message)
        results.append(
            CaseResult(case, chosen=recording.handed_to or settings.bot_name, asked=tuple(recording.asked))
        )
    return RoutingRun(label, results)


@dataclass(frozen=True)
class RoutingReport:
    bot_name: str
    peers: list[PeerStatus]
    before: RoutingRun
    after: RoutingRun | None = None

    @property
    def final(self) -> RoutingRun:
        return self.after or self.before


async def check_routes(settings: Settings, cases_file: Path, *, compare: Path | None = None) -> RoutingReport:
    cases = load_cases(cases_file)
    if cases.bot is not None and cases.bot != settings.bot_name:
        raise RoutingError(
            f"{cases_file}: these cases are {cases.bot}'s; run them with {cases.bot}'s env file "
            f"(this one is {settings.bot_name}'s)"
        )
    try:
        words = Words(settings.bot_description, Prompts.load(prompts_directory(settings.prompts_dir)))
    except PromptError as error:
        raise RoutingError(str(error)) from None
    candidate = read_candidate(compare, settings.bot_name) if compare is not None else None
    async with httpx.AsyncClient(timeout=settings.peer_timeout_seconds) as http:
        cards, peers = await fetch_peers(settings, http)
        if candidate is not None and candidate.peer and candidate.peer not in {p.name for p in peers}:
            raise RoutingError(
                f"--compare: {candidate.label} describes {candidate.peer}, which is not among "
                f"{settings.bot_name}'s peers with a card "
                f"({', '.join(p.name for p in peers if p.name) or 'none'})"
            )
        with tempfile.TemporaryDirectory(prefix="routing-check-") as scratch:
            # Each case is a new conversation; the agent keeps its history as in a real turn.
            store = await Store.open(f"sqlite+aiosqlite:///{scratch}/history.db", bot_name=settings.bot_name)
            try:
                before = await run_cases(
                    settings, words, cards, cases.cases, store.history, label="as configured"
                )
                after = None
                if candidate is not None:
                    after = await run_cases(
                        settings,
                        _apply(words, candidate),
                        cards,
                        cases.cases,
                        store.history,
                        label=f"after ({candidate.label})",
                        replaced={candidate.peer: candidate.description}
                        if candidate.peer and candidate.description
                        else None,
                    )
            finally:
                await store.close()
    return RoutingReport(settings.bot_name, peers, before, after)


def _apply(words: Words, candidate: Candidate) -> Words:
    return Words(
        description=candidate.description
        if candidate.description and not candidate.peer
        else words.description,
        prompts=candidate.prompts or words.prompts,
    )


# The report ------------------------------------------------------------------------------------------


def print_report(report: RoutingReport, out: TextIO, *, min_accuracy: float | None) -> int:
    """The report, and the exit code: 1 when the (final) accuracy is below ``min_accuracy``."""
    for peer in report.peers:
        if peer.name is None:
            out.write(f"warning: no card from {peer.url}; cases expecting that peer cannot be routed to it\n")
    known = {report.bot_name, *(peer.name for peer in report.peers if peer.name)}
    unknown = sorted({r.case.expect for r in report.final.results} - known)
    if unknown:
        out.write(
            f"warning: expected bot(s) {', '.join(unknown)} are neither {report.bot_name} "
            "nor a peer with a card\n"
        )
    run = report.final
    out.write(f"\nRouting check for {report.bot_name}: {run.label}\n\n")
    _table(run, out)
    out.write("\n")
    _confusion(run, sorted(known | {r.case.expect for r in run.results}), out)
    if report.after is not None:
        _moves(report.before, report.after, out)
    out.write(f"\nbefore: {_score(report.before)}\n" if report.after is not None else "\n")
    out.write(f"{'after:  ' if report.after is not None else 'accuracy: '}{_score(run)}")
    if min_accuracy is not None:
        passed = run.accuracy >= min_accuracy
        out.write(f" (threshold {min_accuracy:.0%}: {'pass' if passed else 'FAIL'})\n")
        return 0 if passed else 1
    out.write("\n")
    return 0


def _score(run: RoutingRun) -> str:
    return f"{run.correct}/{len(run.results)} = {run.accuracy:.1%}"


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def _table(run: RoutingRun, out: TextIO) -> None:
    rows = [
        (
            str(number),
            _short(result.case.message, 60),
            result.case.expect,
            result.chosen + (f" (asked {', '.join(result.asked)})" if result.asked else ""),
            "ok" if result.ok else "MISS",
        )
        for number, result in enumerate(run.results, start=1)
    ]
    _grid(("#", "message", "expected", "chosen", ""), rows, out)


def _confusion(run: RoutingRun, bots: list[str], out: TextIO) -> None:
    counts = Counter((result.case.expect, result.chosen) for result in run.results)
    bots = sorted(set(bots) | {result.chosen for result in run.results})
    out.write("expected \u2193 / chosen \u2192\n")
    _grid(
        ("", *bots),
        [(expected, *(str(counts[expected, chosen]) for chosen in bots)) for expected in bots],
        out,
    )


def _moves(before: RoutingRun, after: RoutingRun, out: TextIO) -> None:
    moved = [
        (number, old, new)
        for number, (old, new) in enumerate(zip(before.results, after.results, strict=True), start=1)
        if old.chosen != new.chosen
    ]
    out.write(f"\nmoved: {len(moved)} case(s)\n")
    for number, old, new in moved:
        verdict = "now right" if new.ok else ("now wrong" if old.ok else "still wrong")
        out.write(
            f"  #{number} {_short(new.case.message, 80)!r}: {old.chosen} \u2192 {new.chosen} "
            f"(expected {new.case.expect}: {verdict})\n"
        )


def _grid(header: tuple[str, ...], rows: Sequence[tuple[str, ...]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )


def run_routing_check(
    settings: Settings,
    cases_file: Path,
    *,
    compare: Path | None,
    min_accuracy: float | None,
    out: TextIO,
    err: TextIO,
) -> int:
    """0: at or above the threshold (or none given); 1: below it; 2: the check could not run."""
    try:
        report = asyncio.run(check_routes(settings, cases_file, compare=compare))
    except (RoutingError, ConfigError, StoreError) as error:
        err.write(f"routing check: {error}\n")
        return 2
    return print_report(report, out, min_accuracy=min_accuracy)
