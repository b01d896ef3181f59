"""Reading a peer's answer to a handoff, and what the user is told when the call failed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import structlog
from a2a.helpers import get_data_parts, get_text_parts
from a2a.types import Part, StreamResponse, Task, TaskState
from pydantic import ValidationError

from a2a_bridge.handoff import (
    OUTCOME_KIND,
    HandoffMessage,
    HandoffOutcome,
    HandoffStatus,
    ReasonCode,
    shorten,
)

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


@dataclass(frozen=True)
class InProgress:
    """The peer took the handoff as a task that has not ended yet."""

    task_id: str


def outcome_from_answer(
    response: StreamResponse | None, handoff: HandoffMessage, peer_name: str
) -> HandoffOutcome | InProgress:
    """The peer's typed outcome if it sent one; a task still running is in progress. Without a
    typed outcome, a task the peer reports as failed or rejected is a failure; any other answer (a
    completed task with a text ack, as bots built on Microsoft's sample send, or a plain message)
    means the peer took the request without saying whether it reached the user: unconfirmed, never
    delivered and never failed."""
    task = response.task if response is not None and response.HasField("task") else None
    message = response.message if response is not None and response.HasField("message") else None
    if message is None and task is not None and task.status.HasField("message"):
        message = task.status.message
    parts = list(message.parts) if message is not None else []
    for data in get_data_parts(parts):
        if isinstance(data, dict) and data.get("kind") == OUTCOME_KIND:
            try:
                outcome = HandoffOutcome.model_validate(data)
            except ValidationError:
                break
            if outcome.handoff_id == handoff.handoff_id:
                return outcome.model_copy(update={"peer": peer_name})
    if task is not None and task.status.state in _TASK_RUNNING:
        return InProgress(task.id)
    if task is not None and task.status.state in _TASK_FAILURES:
        log.warning("a2a_send_failure", peer=peer_name, reason="peer reported the task " + _state(task))
        return failed_outcome(
            handoff, peer_name, f"{peer_name} could not accept the handoff.", ReasonCode.PEER_REFUSED
        )
    log.warning(
        "handoff_unconfirmed",
        peer=peer_name,
        handoff_id=handoff.handoff_id,
        answer="task " + _state(task) if task is not None else ("message" if message else "nothing"),
    )
    if acknowledgement := _acknowledgement(parts):
        log.info("handoff_unconfirmed_ack", peer=peer_name, ack=acknowledgement, content=True)
    return HandoffOutcome(
        handoff_id=handoff.handoff_id,
        status=HandoffStatus.UNCONFIRMED,
        peer=peer_name,
        reason_code=ReasonCode.UNCONFIRMED,
    )


_TASK_RUNNING = frozenset(
    {TaskState.TASK_STATE_SUBMITTED, TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_UNSPECIFIED}
)
_TASK_FAILURES = frozenset(
    {TaskState.TASK_STATE_FAILED, TaskState.TASK_STATE_REJECTED, TaskState.TASK_STATE_CANCELED}
)
MAX_ACK_CHARS = 300


def _state(task: Task) -> str:
    return TaskState.Name(task.status.state).removeprefix("TASK_STATE_").lower()


def _acknowledgement(parts: list[Part]) -> str:
    """What the peer said, as text: its text parts and any ``text`` field of its data parts."""
    texts = list(get_text_parts(parts))
    data_parts = get_data_parts(parts)
    texts += [str(data["text"]) for data in data_parts if isinstance(data, dict) and data.get("text")]
    return shorten(" ".join(text.strip() for text in texts if text.strip()), MAX_ACK_CHARS)


def failed_outcome(
    handoff: HandoffMessage, peer: str, reason: str, code: ReasonCode = ReasonCode.UNKNOWN
) -> HandoffOutcome:
    return HandoffOutcome(
        handoff_id=handoff.handoff_id, status=HandoffStatus.FAILED, peer=peer, reason=reason, reason_code=code
    )


REASON_OF_FAILURE = {
    FailureKind.UNAVAILABLE: ReasonCode.PEER_UNREACHABLE,
    FailureKind.CIRCUIT_OPEN: ReasonCode.PEER_UNREACHABLE,
    FailureKind.TIMEOUT: ReasonCode.PEER_UNREACHABLE,
    FailureKind.UNAUTHORIZED: ReasonCode.PEER_UNAUTHORIZED,
    FailureKind.UNREACHABLE: ReasonCode.PEER_UNREACHABLE,
    FailureKind.REFUSED: ReasonCode.PEER_REFUSED,
    FailureKind.UNEXPECTED: ReasonCode.UNKNOWN,
}
