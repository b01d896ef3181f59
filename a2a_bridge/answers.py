"""Reading a peer's answer to a handoff, and what the user is told when the call failed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import structlog
from a2a.helpers import get_data_parts
from a2a.types import StreamResponse
from pydantic import ValidationError

from a2a_bridge.handoff import OUTCOME_KIND, HandoffMessage, HandoffOutcome, HandoffStatus

log = structlog.get_logger(__name__)


class FailureKind(StrEnum):
    UNAVAILABLE = "unavailable"  # no card for that name
    CIRCUIT_OPEN = "circuit_open"
    TIMEOUT = "timeout"
    UNAUTHORIZED = "unauthorized"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"  # the peer answered with a JSON-RPC error
    UNEXPECTED = "unexpected"


@dataclass(frozen=True)
class CallFailure:
    kind: FailureKind
    detail: str


def failure_reason(peer: str, failure: CallFailure) -> str:
    if failure.kind is FailureKind.UNAVAILABLE:
        return f"{peer} is not reachable right now."
    if failure.kind is FailureKind.CIRCUIT_OPEN:
        return (
            f"{peer} is not reachable right now (several recent attempts failed). "
            "Please try again in a minute."
        )
    if failure.kind is FailureKind.TIMEOUT:
        return f"{peer} took too long to answer."
    if failure.kind is FailureKind.UNAUTHORIZED:
        return (
            f"{peer} did not accept this bot's credentials; "
            "an administrator needs to check the A2A settings of both bots."
        )
    if failure.kind is FailureKind.REFUSED:
        return f"{peer} could not accept the handoff."
    return f"{peer} is not reachable right now."


def outcome_from_answer(
    response: StreamResponse | None, handoff: HandoffMessage, peer_name: str
) -> HandoffOutcome:
    message = response.message if response is not None and response.HasField("message") else None
    if (
        message is None
        and response is not None
        and response.HasField("task")
        and response.task.status.HasField("message")
    ):
        message = response.task.status.message
    for data in get_data_parts(list(message.parts)) if message is not None else []:
        if isinstance(data, dict) and data.get("kind") == OUTCOME_KIND:
            try:
                outcome = HandoffOutcome.model_validate(data)
            except ValidationError:
                break
            if outcome.handoff_id == handoff.handoff_id:
                return outcome.model_copy(update={"peer": peer_name})
    log.warning("a2a_send_failure", peer=peer_name, reason="answer carried no handoff outcome")
    return failed_outcome(handoff, peer_name, f"{peer_name} gave an answer this bot could not understand.")


def failed_outcome(handoff: HandoffMessage, peer: str, reason: str) -> HandoffOutcome:
    return HandoffOutcome(
        handoff_id=handoff.handoff_id, status=HandoffStatus.FAILED, peer=peer, reason=reason
    )
