"""Peer tokens already used, shared by every replica on one database (``a2a_bridge.auth.SeenTokens``).

A token's id is written on first use with an INSERT only one replica can win, and kept until the
token expires; a replayed token finds its id and is refused wherever it lands.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.clock import now
from bot.store.errors import translated
from bot.store.schema import used_peer_tokens

# Expired ids are deleted every this many first uses: the table stays about one token lifetime long.
_PRUNE_EVERY = 256


class UsedPeerTokens:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._since_prune = 0

    async def first_use(self, jti: str, expires_at: float) -> bool:
        with translated("checking a peer token"):
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        used_peer_tokens.insert().values(
                            jti=jti[:255], expires_at=datetime.fromtimestamp(expires_at, UTC)
                        )
                    )
            except IntegrityError:
                return False
            self._since_prune += 1
            if self._since_prune >= _PRUNE_EVERY:
                self._since_prune = 0
                async with self._engine.begin() as connection:
                    await connection.execute(
                        used_peer_tokens.delete().where(used_peer_tokens.c.expires_at < now())
                    )
        return True
