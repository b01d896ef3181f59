"""Where a task's push targets are kept: a2a-sdk's table and encoding, written without its ORM.

Every handoff that asks for a push writes its target once and reads it back once to push the ended
task. a2a-sdk's ``DatabasePushNotificationConfigStore`` does each through an ORM session: ``merge``
reads the row before it writes it, and the read builds mapped objects. Here each is one SQL
statement, built once, on the same table, with the SDK's own JSON (and, with a key, encrypted)
payload, so rows written by either store read the same in both.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from a2a.server.context import ServerCallContext
from a2a.server.tasks import DatabasePushNotificationConfigStore
from a2a.server.tasks.push_notification_config_store import normalize_push_notification_config
from a2a.types import TaskPushNotificationConfig
from sqlalchemy import bindparam, select

from a2a_bridge.tasks import upsert_for


class HandoffPushConfigStore(DatabasePushNotificationConfigStore):
    """``set_info``, ``get_info`` and ``get_info_for_dispatch`` as single prebuilt statements;
    ``delete_info`` (rare: only the A2A method of that name) is the SDK's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        table = self.config_model.__table__
        self._columns = [column.key for column in table.columns]
        insert = upsert_for(self.engine.dialect.name)(table)
        excluded = insert.excluded
        self._upsert = insert.on_conflict_do_update(
            index_elements=[table.c.task_id, table.c.config_id],
            set_={key: excluded[key] for key in self._columns if key not in ("task_id", "config_id")},
        )
        self._for_dispatch = select(table).where(table.c.task_id == bindparam("task"))
        self._for_owner = select(table).where(
            table.c.task_id == bindparam("task"), table.c.owner == bindparam("owner")
        )

    async def set_info(
        self, task_id: str, notification_config: TaskPushNotificationConfig, context: ServerCallContext
    ) -> TaskPushNotificationConfig:
        await self._ensure_initialized()
        config = normalize_push_notification_config(task_id, notification_config)
        model = self._to_orm(task_id, config, self.owner_resolver(context))
        async with self.engine.begin() as connection:
            await connection.execute(self._upsert, {key: getattr(model, key) for key in self._columns})
        return config

    async def get_info(self, task_id: str, context: ServerCallContext) -> list[TaskPushNotificationConfig]:
        return await self._read(self._for_owner, {"task": task_id, "owner": self.owner_resolver(context)})

    async def get_info_for_dispatch(self, task_id: str) -> list[TaskPushNotificationConfig]:
        return await self._read(self._for_dispatch, {"task": task_id})

    async def _read(self, statement: Any, values: dict[str, str]) -> list[TaskPushNotificationConfig]:
        await self._ensure_initialized()
        async with self.engine.connect() as connection:
            rows = (await connection.execute(statement, values)).mappings().all()
        configs = []
        for row in rows:
            try:
                configs.append(self._from_orm(SimpleNamespace(**row)))  # type: ignore[arg-type]
            except ValueError:  # logged by the SDK's decoding; as in its store, the row is skipped
                continue
        return configs
