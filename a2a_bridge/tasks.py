"""A received handoff as an A2A task: how it reads while it runs and once it has ended.

A handoff that is accepted becomes a Task in state ``working`` at once; it ends ``completed`` when the
user was greeted (or when the greeting went out and Teams' answer never came back: the outcome then
says ``unconfirmed``, which is the truth), ``failed`` when it could not be done. Every state carries
the typed ``handoffOutcome`` (once there is one) and a text part for peers that show only text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from a2a.auth.user import User
from a2a.helpers import new_data_part, new_text_part
from a2a.server.context import ServerCallContext
from a2a.server.tasks import TaskStore
from a2a.types import ListTasksRequest, ListTasksResponse, Message, Part, Role, Task, TaskState, TaskStatus
from google.protobuf.timestamp_pb2 import Timestamp

from a2a_bridge.handoff import HandoffMessage, HandoffOutcome, HandoffStatus

_TASK_ID_NAMESPACE = uuid.UUID("1f0c7a52-8d1e-4a43-b7c9-0e5f9a6d2b31")

FINAL_STATES = {
    HandoffStatus.DELIVERED: TaskState.TASK_STATE_COMPLETED,
    HandoffStatus.UNCONFIRMED: TaskState.TASK_STATE_COMPLETED,
    HandoffStatus.FAILED: TaskState.TASK_STATE_FAILED,
    HandoffStatus.REJECTED: TaskState.TASK_STATE_REJECTED,
}


def task_id_for(caller: str, handoff_id: str) -> str:
    """The same handoff from the same caller is the same task: a retried send finds it."""
    return str(uuid.uuid5(_TASK_ID_NAMESPACE, f"{caller}|{handoff_id}"))


def outcome_text(outcome: HandoffOutcome) -> str:
    if outcome.status is HandoffStatus.DELIVERED:
        return f"{outcome.peer} has greeted the user in a 1:1 chat."
    if outcome.status is HandoffStatus.UNCONFIRMED:
        return f"{outcome.peer} sent the greeting; Teams did not confirm it arrived."
    return f"Handoff {outcome.status.value}: {outcome.reason}"


def _status(state: TaskState, parts: list[Part], task_id: str, context_id: str) -> TaskStatus:
    stamp = Timestamp()
    stamp.GetCurrentTime()
    message = Message(
        role=Role.ROLE_AGENT,
        message_id=str(uuid.uuid4()),
        task_id=task_id,
        context_id=context_id,
        parts=parts,
    )
    return TaskStatus(state=state, message=message, timestamp=stamp)


def working_status(receiver: str, task_id: str, context_id: str) -> TaskStatus:
    text = f"{receiver} is opening a chat with the user."
    return _status(TaskState.TASK_STATE_WORKING, [new_text_part(text)], task_id, context_id)


def final_status(outcome: HandoffOutcome, task_id: str, context_id: str) -> TaskStatus:
    parts = [new_data_part(outcome.to_wire()), new_text_part(outcome_text(outcome))]
    return _status(FINAL_STATES[outcome.status], parts, task_id, context_id)


@dataclass(frozen=True)
class TaskRef:
    task_id: str
    context_id: str


def task_of(ref: TaskRef, status: TaskStatus, first_message: Message | None = None) -> Task:
    task = Task(id=ref.task_id, context_id=ref.context_id, status=status)
    if first_message is not None:
        task.history.append(first_message)
    return task


@dataclass(frozen=True)
class _Caller(User):
    name: str

    @property
    def is_authenticated(self) -> bool:
        return bool(self.name)

    @property
    def user_name(self) -> str:
        return self.name


def caller_context(caller: str) -> ServerCallContext:
    """The call context a task is read and saved under outside a request (a resumed handoff):
    a2a-sdk's stores scope tasks by the caller's name, which is ``""`` for an anonymous caller."""
    return ServerCallContext(user=_Caller(caller))


async def save_final(
    store: TaskStore, ref: TaskRef, caller: str, outcome: HandoffOutcome, handoff: HandoffMessage
) -> Task:
    """The ended task, written over the working one (its history kept)."""
    context = caller_context(caller)
    task = await store.get(ref.task_id, context)
    if task is None:
        task = task_of(ref, final_status(outcome, ref.task_id, ref.context_id))
    else:
        task.status.CopyFrom(final_status(outcome, ref.task_id, ref.context_id))
    await store.save(task, context)
    return task


TERMINAL = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_CANCELED,
    }
)


class EndedTasksStayEnded(TaskStore):
    """A task store in which a task never leaves an ended state.

    The request handler writes the ``working`` task as it reads the executor's events, and the job
    writes the ended task when it finishes; under load the handler's write can come second. This
    keeps the ended one."""

    def __init__(self, inner: TaskStore) -> None:
        self._inner = inner

    async def save(self, task: Task, context: ServerCallContext) -> None:
        if task.status.state not in TERMINAL:
            stored = await self._inner.get(task.id, context)
            if stored is not None and stored.status.state in TERMINAL:
                return
        await self._inner.save(task, context)

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        return await self._inner.get(task_id, context)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        return await self._inner.list(params, context)

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        await self._inner.delete(task_id, context)
