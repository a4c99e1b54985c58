"""FakeBot, put together from its parts, each a module of this package."""

from __future__ import annotations

from tests.fakes.telegram.chat_methods import ChatMethods
from tests.fakes.telegram.profile import BotProfile
from tests.fakes.telegram.readback import Readback
from tests.fakes.telegram.users import UserActions
from tests.fakes.telegram.webhook import Webhooks


class FakeBot(UserActions, Readback, Webhooks, ChatMethods, BotProfile):
    """One bot of the fake Bot API: its server-side state, what tests make users do (user_*),
    what tests read back, and the faults they ask for. Create it with FakeTelegram.add_bot.

    State: `state.BotState`; users' actions: `users`; what tests read back: `readback`; the update
    queue and getUpdates: `updates`; webhooks: `webhook`; serving a call and faults: `dispatch`;
    the chat and message methods: `chat_methods` (over `messages`); getMe, names and commands: `profile`.
    """
