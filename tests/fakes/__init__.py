"""Protocol-faithful fake servers on 127.0.0.1 for tests: the Telegram Bot API
(`tests.fakes.telegram`) and OpenAI/Anthropic-style model providers (`tests.fakes.model`).
Each module's docstring says which protocol it mimics and what it leaves out."""

from tests.fakes.model import FakeModel, ModelRequest, RecordedRequest
from tests.fakes.telegram import ApiCall, BotApiError, FakeBot, FakeTelegram, FakeUser

__all__ = ["ApiCall", "BotApiError", "FakeBot", "FakeModel", "FakeTelegram", "FakeUser", "ModelRequest",
           "RecordedRequest"]
