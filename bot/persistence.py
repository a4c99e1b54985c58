"""python-telegram-bot persistence in the platform's database (table `bot_state`), so a restart
does not lose anyone's place in a conversation, on SQLite and PostgreSQL alike.

Stored: conversation states and per-user data. Not stored: chat data, bot data and callback
data (the bot does not use them). Secrets never reach this table in the clear: the handlers
keep only sealed values in user data (bot/pending.py).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import BasePersistence, PersistenceInput

from db.models import BotState

USER_DATA = "user_data"
CONVERSATION = "conversation:"  # + the ConversationHandler's name


class DatabasePersistence(BasePersistence[dict, dict, dict]):
    def __init__(self, sessions: async_sessionmaker[AsyncSession], update_interval: float = 1) -> None:
        # Written each `update_interval` seconds and at shutdown: a killed platform loses at most that.
        super().__init__(store_data=PersistenceInput(bot_data=False, chat_data=False, user_data=True,
                                                     callback_data=False), update_interval=update_interval)
        self.sessions = sessions

    # -- reads (once, at start) ---------------------------------------------------------------
    async def get_user_data(self) -> dict[int, dict]:
        return {int(key): data for key, data in await self._namespace(USER_DATA)}

    async def get_conversations(self, name: str) -> dict[tuple, object]:
        return {tuple(json.loads(key)): state for key, state in await self._namespace(CONVERSATION + name)}

    async def get_chat_data(self) -> dict[int, dict]:
        return {}

    async def get_bot_data(self) -> dict:
        return {}

    async def get_callback_data(self) -> None:
        return None

    # -- writes -------------------------------------------------------------------------------
    async def update_conversation(self, name: str, key: tuple, new_state: object | None) -> None:
        row_key = json.dumps(list(key))
        if new_state is None:
            await self._delete(CONVERSATION + name, row_key)
        else:
            await self._put(CONVERSATION + name, row_key, new_state)

    async def update_user_data(self, user_id: int, data: dict) -> None:
        if data:
            await self._put(USER_DATA, str(user_id), data)
        else:
            await self._delete(USER_DATA, str(user_id))

    async def drop_user_data(self, user_id: int) -> None:
        await self._delete(USER_DATA, str(user_id))

    async def update_chat_data(self, chat_id: int, data: dict) -> None:
        return None

    async def update_bot_data(self, data: dict) -> None:
        return None

    async def update_callback_data(self, data: Any) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def refresh_user_data(self, user_id: int, user_data: dict) -> None:
        return None  # this process is the only writer (the bot runs under a singleton lease)

    async def refresh_chat_data(self, chat_id: int, chat_data: dict) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict) -> None:
        return None

    async def flush(self) -> None:
        return None  # every write is committed when made

    # -- rows ---------------------------------------------------------------------------------
    async def _namespace(self, namespace: str) -> list[tuple[str, Any]]:
        async with self.sessions() as session:
            rows = await session.execute(select(BotState.key, BotState.data).where(BotState.namespace == namespace))
            return [(key, data) for key, data in rows]

    async def _put(self, namespace: str, key: str, data: Any) -> None:
        for _ in range(2):  # insert, or update the row a concurrent insert just made
            async with self.sessions() as session:
                row = await session.scalar(select(BotState).where(BotState.namespace == namespace, BotState.key == key))
                if row is None:
                    session.add(BotState(namespace=namespace, key=key, data=data))
                else:
                    row.data = data
                try:
                    await session.commit()
                    return
                except IntegrityError:
                    continue

    async def _delete(self, namespace: str, key: str) -> None:
        async with self.sessions() as session:
            await session.execute(delete(BotState).where(BotState.namespace == namespace, BotState.key == key))
            await session.commit()
