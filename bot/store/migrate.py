"""Bringing a database to this release's schema with alembic, once, whoever starts first.

Run at start-up, before the bot serves. On PostgreSQL a transaction-scoped advisory lock makes
replicas started together take turns: the first upgrades, the others find nothing left to do.
A database at a revision this release does not know was written by a newer release: refused.
"""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from bot.store.errors import StoreError

# Any constant shared by every release: the key of the advisory lock schema changes take.
_MIGRATION_LOCK_KEY = 7_301_442_118


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("bot.store") / "migrations"))
    config.attributes["connection"] = connection
    return config


def upgrade_to_head(connection: Connection) -> None:
    """Synchronous (``AsyncConnection.run_sync``); the caller commits."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config = _config(connection)
    script = ScriptDirectory.from_config(config)
    current = MigrationContext.configure(connection).get_current_revision()
    if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
        raise StoreError(
            f"STATE_URL: the database is at schema revision {current}, newer than this release "
            f"({script.get_current_head()}); run the newer release or restore a backup"
        )
    if current != script.get_current_head():
        command.upgrade(config, "head")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
