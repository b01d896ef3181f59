"""Bringing a database to this release's schema with alembic, once, whoever starts first.

Run at start-up, before the bot serves. On PostgreSQL a transaction-scoped advisory lock makes
replicas started together take turns: the first upgrades, the others find nothing left to do.
A database at a revision this release does not know was written by a newer release: refused.
"""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Connection, inspect, text

from bot.store.errors import StoreError
from bot.store.schema import HEAD_REVISION, LEGACY_SCHEMA_VERSION, metadata, schema_info

if TYPE_CHECKING:
    from alembic.config import Config

# Any constant shared by every release: the key of the advisory lock schema changes take.
_MIGRATION_LOCK_KEY = 7_301_442_118


def _config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("bot.store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(connection: Connection) -> None:
    """Synchronous (``AsyncConnection.run_sync``); the caller commits.

    A database already at this release's revision is the common case (every restart): it is read
    with one query, and alembic (tens of MB resident) is loaded only when there is work to do."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    current = current_revision(connection)
    if current == HEAD_REVISION:
        return
    if current is None and not inspect(connection).get_table_names():
        # An empty database: this release's tables as they are, stamped with the head revision
        # (alembic's own advice for new databases). The migrations are for databases with a past.
        metadata.create_all(connection)
        connection.execute(
            text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        )
        connection.execute(text("INSERT INTO alembic_version VALUES (:head)"), {"head": HEAD_REVISION})
        connection.execute(schema_info.insert().values(id=1, version=LEGACY_SCHEMA_VERSION))
        return
    from alembic import command
    from alembic.script import ScriptDirectory

    config = _config(connection)
    script = ScriptDirectory.from_config(config)
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise StoreError(
            f"STATE_URL: the database is at schema revision {current}, newer than this release "
            f"({script.get_current_head()}); run the newer release or restore a backup"
        )
    if current != script.get_current_head():
        command.upgrade(config, "head")


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
