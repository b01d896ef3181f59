"""How a peer's answer to a handoff is read: only a typed outcome says delivered; an answer without
one is unconfirmed, never success and never failure, unless the peer says its task failed."""

from __future__ import annotations

from typing import Any

import pytest
from a2a.helpers import new_data_part, new_text_part
from a2a.types import Message, Part, Role, StreamResponse, Task, TaskState, TaskStatus

from a2a_bridge.answers import InProgress, outcome_from_answer
from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus, ReasonCode

HANDOFF = HandoffMessage(
    handoff_id="h-1",
    from_="Alice",
    user_name="Dana Smith",
    aad_object_id="aad-dana-0001",
    tenant_id="tenant-contoso",
    service_url="https://smba.trafficmanager.net/emea/",
    summary="VPN drops.",
    hops=1,
)


def message(*parts: Part) -> StreamResponse:
    return StreamResponse(message=Message(role=Role.ROLE_AGENT, message_id="m-1", parts=list(parts)))


def task(state: Any, *parts: Part) -> StreamResponse:
    status_message = Message(role=Role.ROLE_AGENT, message_id="m-1", parts=list(parts))
    return StreamResponse(
        task=Task(id="t-1", context_id="c-1", status=TaskStatus(state=state, message=status_message))
    )


def typed(status: str, handoff_id: str = "h-1") -> Part:
    return new_data_part(
        HandoffOutcome(handoff_id=handoff_id, status=HandoffStatus(status), peer="x").to_wire()
    )


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (message(typed("delivered"), new_text_part("Bob took it.")), "delivered"),
        (message(typed("rejected")), "rejected"),
        (task(TaskState.TASK_STATE_COMPLETED, typed("delivered")), "delivered"),
        (
            task(
                TaskState.TASK_STATE_COMPLETED,
                new_data_part({"text": "Handoff received and Dana contacted directly."}),
            ),
            "unconfirmed",
        ),
        (
            task(
                TaskState.TASK_STATE_COMPLETED,
                new_data_part({"text": "Unsupported or incomplete handoff message."}),
            ),
            "unconfirmed",
        ),
        (message(new_text_part("Got it, I'll write to Dana.")), "unconfirmed"),
        (message(typed("delivered", handoff_id="someone-else")), "unconfirmed"),
        (message(typed("unconfirmed")), "unconfirmed"),
        (None, "unconfirmed"),
        (task(TaskState.TASK_STATE_FAILED, new_data_part({"text": "boom"})), "failed"),
        (task(TaskState.TASK_STATE_REJECTED), "failed"),
    ],
    ids=[
        "typed-delivered",
        "typed-rejected",
        "typed-in-a-task",
        "sample-ack",
        "sample-unsupported",
        "plain-text",
        "another-handoffs-outcome",
        "peer-claims-unconfirmed",
        "no-answer",
        "failed-task",
        "rejected-task",
    ],
)
def test_an_answer_is_read_for_what_it_says_and_no_more(answer: StreamResponse | None, expected: str) -> None:
    outcome = outcome_from_answer(answer, HANDOFF, "Bob")
    assert isinstance(outcome, HandoffOutcome)
    assert outcome.status.value == expected
    assert outcome.peer == "Bob" and outcome.handoff_id == "h-1"


@pytest.mark.parametrize("state", [TaskState.TASK_STATE_WORKING, TaskState.TASK_STATE_SUBMITTED])
def test_a_task_still_running_is_in_progress_not_an_outcome(state: Any) -> None:
    answer = outcome_from_answer(task(state, new_text_part("Bob is opening a chat.")), HANDOFF, "Bob")
    assert answer == InProgress("t-1")


def test_an_outcome_code_this_release_does_not_know_reads_as_unknown() -> None:
    wire = HandoffOutcome(handoff_id="h-1", status=HandoffStatus.FAILED, peer="Bob").to_wire()
    outcome = outcome_from_answer(
        message(new_data_part({**wire, "reasonCode": "quantum_flux"})), HANDOFF, "Bob"
    )
    assert isinstance(outcome, HandoffOutcome) and outcome.reason_code is ReasonCode.UNKNOWN
