"""A received handoff as an A2A task: how it reads while it runs and once it has ended.

A handoff that is accepted becomes a Task in state ``working`` at once; it ends ``completed`` when the
user was greeted (or when the greeting went out and Teams' answer never came back: the outcome then
says ``unconfirmed``, which is the truth), ``failed`` when it could not be done. Every state carries
the typed ``handoffOutcome`` (once there is one) and a text part for peers that show only text.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from a2a.auth.user import User
from a2a.helpers import new_data_part, new_text_part
from a2a.server.context import ServerCallContext
from a2a.server.models import TaskModel
from a2a.server.tasks import DatabaseTaskStore
from a2a.types import Message, Part, Role, Task, TaskState, TaskStatus
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select

from a2a_bridge.handoff import HandoffOutcome, HandoffStatus

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


def outcome_message(outcome: HandoffOutcome, context_id: str) -> Message:
    """A handoff's answer without a task (a refusal): the typed outcome and its text."""
    return Message(
        role=Role.ROLE_AGENT,
        message_id=str(uuid.uuid4()),
        context_id=context_id,
        parts=[new_data_part(outcome.to_wire()), new_text_part(outcome_text(outcome))],
    )


def task_of(ref: TaskRef, status: TaskStatus, first_message: Message | None = None) -> Task:
    task = Task(id=ref.task_id, context_id=ref.context_id, status=status)
    if first_message is not None:
        task.history.append(first_message)
    return task


def working_task(receiver: str, ref: TaskRef, first_message: Message | None = None) -> Task:
    return task_of(ref, working_status(receiver, ref.task_id, ref.context_id), first_message)


def ended_task(outcome: HandoffOutcome, ref: TaskRef, first_message: Message | None = None) -> Task:
    return task_of(ref, final_status(outcome, ref.task_id, ref.context_id), first_message)


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


async def save_final(store: HandoffTaskStore, ref: TaskRef, caller: str, outcome: HandoffOutcome) -> Task:
    """The ended task, written over the working one (its history kept), in one statement."""
    task = ended_task(outcome, ref)
    await store.save(task, caller_context(caller), status_only=True)
    return task


TERMINAL = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_REJECTED,
        TaskState.TASK_STATE_CANCELED,
    }
)


TERMINAL_NAMES = tuple(TaskState.Name(state) for state in TERMINAL)


class HandoffTaskStore(DatabaseTaskStore):
    """a2a-sdk's database task store, with ``save`` and ``get`` as single SQL statements, and a task
    that never leaves an ended state.

    The request handler writes the ``working`` task after it has started the job, which may already
    have written the ended one; the upsert's condition keeps the ended one, in the database itself,
    so replicas cannot race past it. (The SDK's ORM ``merge`` reads before it
    writes, several times per handoff; a handoff saves and reads its task a few times.)"""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._upserts: dict[tuple[bool, bool], Any] = {}

    async def save(self, task: Task, context: ServerCallContext, *, status_only: bool = False) -> None:
        """``status_only``: a task already stored keeps all but its status (the ended task is
        written without reading the working one first)."""
        await self._ensure_initialized()
        values = self._row(task, self.owner_resolver(context))
        statement = self._upsert(status_only=status_only, ended=task.status.state in TERMINAL)
        async with self.engine.begin() as connection:
            await connection.execute(statement, values)

    def _upsert(self, *, status_only: bool, ended: bool) -> Any:
        """The upsert for this kind of save, built once: the row's values come as parameters, so
        SQLAlchemy neither builds the statement nor computes its cache key on every save."""
        key = (status_only, ended)
        statement = self._upserts.get(key)
        if statement is None:
            table = self.task_model.__table__
            insert = upsert_for(self.engine.dialect.name)(table)
            columns = [column.key for column in table.columns if column.key != "id"]
            changed = ("status", "last_updated") if status_only else columns
            excluded = insert.excluded  # a new alias of the table on every access: read it once
            keep_ended = table.c.status["state"].as_string().not_in(TERMINAL_NAMES)
            statement = insert.on_conflict_do_update(
                index_elements=[table.c.id],
                set_={name: excluded[name] for name in changed},
                where=None if ended else keep_ended,
            )
            self._upserts[key] = statement
        return statement

    async def get(self, task_id: str, context: ServerCallContext) -> Task | None:
        await self._ensure_initialized()
        table = self.task_model.__table__
        async with self.engine.connect() as connection:
            row = (
                await connection.execute(
                    select(table).where(table.c.id == task_id, table.c.owner == self.owner_resolver(context))
                )
            ).first()
        if row is None:
            return None
        mapping = dict(row._mapping)
        mapping["task_metadata"] = mapping.pop("metadata", None)
        return self._from_orm(SimpleNamespace(**mapping))  # type: ignore[arg-type]

    def _row(self, task: Task, owner: str) -> dict[str, Any]:
        model = self._to_orm(task, owner)
        row = {column.key: getattr(model, attribute.key) for attribute, column in _COLUMNS.items()}
        return row


def upsert_for(dialect: str) -> Any:
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


# The mapped attributes of a2a-sdk's task model and the columns they write.
_COLUMNS = {attribute: attribute.columns[0] for attribute in sa_inspect(TaskModel).column_attrs}
