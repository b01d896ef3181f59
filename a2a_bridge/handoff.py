"""The HandoffMessage wire contract, the outcome a receiver answers with, and reading a request.

Field names on the wire are camelCase (``handoffId``, ``aadObjectId``...). Every id is a string:
A2A data parts are protobuf Structs, in which every number comes back as a float.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import structlog
from a2a.helpers import get_data_parts, get_text_parts
from a2a.types import Message
from a2a.utils.errors import ContentTypeNotSupportedError, InvalidParamsError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

log = structlog.get_logger(__name__)

HANDOFF_KIND = "handoff"
OUTCOME_KIND = "handoffOutcome"
MAX_SUMMARY_CHARS = 4000
_MESSAGE_ID_NAMESPACE = uuid.UUID("6c1f8f0e-3f43-4b7e-9a55-2f3f0c9a1d21")


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits, else cut at the last word boundary before ``limit`` and marked with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    boundary = cut.rstrip().rfind(" ")
    if boundary > limit // 2:
        cut = cut[:boundary]
    return cut.rstrip(" ,;:.-") + "\u2026"


def normal_service_url(url: str) -> str:
    """One spelling per serviceUrl: scheme and host in lower case, no trailing slash. Teams writes
    one endpoint both ways (``https://smba.trafficmanager.net/amer/`` and ``.../amer``); stored,
    compared and called, it is written once. Anything unparseable is left for the policy to refuse."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc.lower() if parts.netloc.isascii() else parts.netloc
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), parts.query, parts.fragment))


class _WireModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", str_strip_whitespace=True
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude_none=True)


class HandoffMessage(_WireModel):
    """What one bot tells another when it hands a user over."""

    kind: Literal["handoff"] = "handoff"
    handoff_id: str = Field(min_length=1, max_length=100)
    from_: str = Field(alias="from", min_length=1, max_length=100)
    user_name: str = Field(default="", max_length=200)
    aad_object_id: str = Field(min_length=1, max_length=100)
    tenant_id: str = Field(min_length=1, max_length=100)
    service_url: str = Field(min_length=1, max_length=500, pattern=r"^https?://")
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY_CHARS)
    hops: int = Field(ge=1, le=100)

    @field_validator("service_url")
    @classmethod
    def _one_spelling(cls, value: str) -> str:
        return normal_service_url(value)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> HandoffMessage:
        """Parse a data part; a whole-number float (how Structs carry ints) counts as an int."""
        normalised = dict(data)
        hops = normalised.get("hops")
        if isinstance(hops, float) and hops.is_integer():
            normalised["hops"] = int(hops)
        return cls.model_validate(normalised, strict=False)

    def a2a_message_id(self) -> str:
        """Derived from handoffId, so a retried send is the same A2A message."""
        return str(uuid.uuid5(_MESSAGE_ID_NAMESPACE, f"handoff:{self.handoff_id}"))


class HandoffStatus(StrEnum):
    DELIVERED = "delivered"
    REJECTED = "rejected"
    FAILED = "failed"
    UNCONFIRMED = "unconfirmed"
    """Whether the user was reached is not known: the sender's reading of an answer without a typed
    outcome (a peer that tracks none, such as one built on Microsoft's sample) or of a peer that went
    quiet, and the receiver's answer when its greeting went out and Teams never confirmed it."""


class ReasonCode(StrEnum):
    """Why a handoff ended as it did, typed on the wire: the sender picks the user's words by it
    (``prompts/reason_<code>.txt``) and labels its metrics with it."""

    NOT_INSTALLED = "not_installed"  # Teams would not open the chat: the receiver's app is not installed
    TEAMS_CREDENTIALS = "teams_credentials"  # Teams refused the receiver's bot credentials
    TEAMS_BUSY = "teams_busy"  # Teams throttled (429) or failed (5xx)
    TEAMS_REFUSED = "teams_refused"  # Teams refused the request for another reason
    TEAMS_UNREACHABLE = "teams_unreachable"  # no answer from Teams before the request went out
    TEAMS_UNCONFIRMED = "teams_unconfirmed"  # the greeting went out; Teams' answer never came back
    POLICY_REJECTED = "policy_rejected"  # hop limit, serviceUrl or tenant not allowed
    INTERNAL = "internal"  # the receiver failed in a way it did not foresee
    PEER_UNREACHABLE = "peer_unreachable"  # the sender could not reach the receiver
    PEER_LOST = "peer_lost"  # the receiver took the handoff and then stopped answering
    PEER_TIMEOUT = "peer_timeout"  # the receiver did not answer the handoff in time
    PEER_REFUSED = "peer_refused"  # the receiver refused the request (JSON-RPC error)
    PEER_UNAUTHORIZED = "peer_unauthorized"  # the receiver did not accept the sender's token
    UNCONFIRMED = "unconfirmed"  # the receiver took it and never said how it ended
    UNKNOWN = "unknown"


class HandoffOutcome(_WireModel):
    """The receiver's answer. ``reason`` is the receiver's own words, for logs and for senders that
    do not know ``reasonCode``; the sender's user is told the text its prompts give the code."""

    kind: Literal["handoffOutcome"] = "handoffOutcome"
    handoff_id: str
    status: HandoffStatus
    peer: str
    conversation_id: str | None = None
    reason: str | None = None
    reason_code: ReasonCode | None = None
    chat_url: str | None = None
    """A link that opens the user's new chat with the receiver, when the receiver knows one."""

    @field_validator("reason_code", mode="before")
    @classmethod
    def _unknown_codes_are_unknown(cls, value: object) -> object:
        """A newer peer's code this release does not know is ``unknown``, not a refused answer."""
        if isinstance(value, str) and value not in ReasonCode._value2member_map_:
            return ReasonCode.UNKNOWN
        return value

    @field_validator("chat_url")
    @classmethod
    def _https_only(cls, value: str | None) -> str | None:
        return value if value is None or value.startswith("https://") else None


def describe_validation_error(error: ValidationError) -> str:
    """One line naming the offending wire field(s), without echoing the submitted values."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(message)"
        problems.append(f"{field}: {item['msg']}")
    return "invalid handoff: " + "; ".join(problems)


@dataclass(frozen=True)
class Question:
    """A plain-text A2A message: a peer consulting this bot, no Teams involved."""

    text: str


MAX_QUESTION_CHARS = 4000


def request_from_message(message: Message | None, caller: str | None = None) -> HandoffMessage | Question:
    """What a message asks for: a handoff (one data part of kind 'handoff') or a question (text
    parts only). Anything else is -32602 naming what is wrong (never echoing values).

    ``caller`` is the authenticated peer, if any: it scopes the handoff id derived for peers that
    send none (see ``handoff_from_message``)."""
    parts = list(message.parts) if message is not None else []
    unsupported = sorted({str(part.WhichOneof("content")) for part in parts} - {"text", "data"})
    if unsupported:
        log.warning("request_unsupported_parts", kinds=unsupported)
        raise ContentTypeNotSupportedError(
            message=f"unsupported part type(s) {', '.join(unsupported)}: this agent reads text and data parts"
        )
    payloads = get_data_parts(parts)
    texts = [text for text in get_text_parts(parts) if text.strip()]
    if not payloads and texts and len(texts) == len(parts):
        question = "\n".join(texts).strip()
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidParamsError(
                message=f"invalid question: text longer than {MAX_QUESTION_CHARS} characters"
            )
        return Question(question)
    return handoff_from_message(message, caller)


def handoff_from_message(message: Message | None, caller: str | None = None) -> HandoffMessage:
    """The handoff a message carries, or -32602 naming what is wrong (never echoing values).

    Peers built on Microsoft's sample track neither ``handoffId`` nor ``hops``: such a handoff is a
    first one (hops 1), and its id is derived from the caller and the A2A message id, so a retry of
    the same message is the same handoff and greets once."""
    parts = list(message.parts) if message is not None else []
    payloads = [data for data in get_data_parts(parts) if isinstance(data, dict)]
    handoffs = [data for data in payloads if data.get("kind") == HANDOFF_KIND]
    if len(handoffs) != 1:
        log.warning("handoff_invalid", reason="no handoff part")
        raise InvalidParamsError(
            message="invalid request: message: expected exactly one data part with kind 'handoff', "
            "or a plain-text question"
        )
    data = dict(handoffs[0])
    if "handoffId" not in data and message is not None and message.message_id:
        data["handoffId"] = str(uuid.uuid5(_MESSAGE_ID_NAMESPACE, f"{caller or ''}|{message.message_id}"))
    data.setdefault("hops", 1)
    try:
        return HandoffMessage.from_wire(data)
    except ValidationError as error:
        description = describe_validation_error(error)
        log.warning("handoff_invalid", reason=description)
        raise InvalidParamsError(message=description) from None
