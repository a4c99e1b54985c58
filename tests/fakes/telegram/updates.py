"""A bot's update queue and getUpdates: long polling, offsets that confirm, allowed_updates, and the
409s Telegram answers when a newer poll or a webhook takes over."""

from __future__ import annotations

import asyncio

from tests.fakes.telegram.dispatch import api_method
from tests.fakes.telegram.params import Params
from tests.fakes.telegram.protocol import (
    NOT_SENT_BY_DEFAULT,
    TERMINATED_BY_OTHER_POLL,
    TERMINATED_BY_SET_WEBHOOK,
    UNAUTHORIZED,
    WEBHOOK_IS_ACTIVE,
    BotApiError,
    JsonDict,
)
from tests.fakes.telegram.state import BotState, deep_copy


class UpdateQueue(BotState):
    """Updates wait here, oldest first, until getUpdates confirms them or the webhook takes them."""

    @property
    def pending_updates(self) -> list[JsonDict]:
        return deep_copy(self._updates)

    def _wants(self, kind: str) -> bool:
        if not self._allowed_updates:
            return kind not in NOT_SENT_BY_DEFAULT
        return kind in self._allowed_updates

    def _enqueue(self, kind: str, payload: JsonDict) -> None:
        if not self._wants(kind):
            return
        self._updates.append({"update_id": self._next_update_id, kind: deep_copy(payload)})
        self._next_update_id += 1
        self._changed.notify()

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]  # only the last -offset are kept

    @api_method("getUpdates")
    async def _get_updates(self, p: Params) -> list[JsonDict]:
        if self._webhook:
            raise BotApiError(409, WEBHOOK_IS_ACTIVE)
        offset = p.integer("offset") or 0
        limit = min(max(p.integer("limit") or 100, 1), 100)
        timeout = min(max(p.integer("timeout") or 0, 0), self.telegram.max_long_poll_s)
        allowed = p.json("allowed_updates", what="allowed updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        self._confirm(offset)
        turn = self._poll_turn = object()
        self._changed.notify()  # a pending poll sees it lost its turn
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._poll_turn is not turn:
                raise BotApiError(409, TERMINATED_BY_OTHER_POLL)
            if self._webhook:
                raise BotApiError(409, TERMINATED_BY_SET_WEBHOOK)
            if self.revoked:
                raise BotApiError(401, UNAUTHORIZED)
            if self._updates or self.telegram.closing:
                return deep_copy(self._updates[:limit])
            remaining = deadline - loop.time()
            if remaining <= 0:
                return []
            await self._changed.wait(remaining)
