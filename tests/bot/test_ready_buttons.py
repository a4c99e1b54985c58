"""The deploy's last message: a button to their bot, and one to their instance's own page when
that is a public HTTPS address (Telegram opens nothing else; a laptop's stays text)."""

from bot.progress import ready_buttons
from db.models import Instance


def _urls(markup) -> list[str]:
    return [button.url for row in markup.inline_keyboard for button in row] if markup else []


def test_a_public_https_instance_page_is_a_button() -> None:
    instance = Instance(telegram_bot_username="ada_bot")
    assert _urls(ready_buttons(instance, "https://claw-1.claws.example.com")) == [
        "https://t.me/ada_bot", "https://claw-1.claws.example.com"]


def test_a_laptops_http_page_is_not() -> None:
    assert _urls(ready_buttons(Instance(telegram_bot_username="ada_bot"), "http://claw-1.localhost:8080")) == [
        "https://t.me/ada_bot"]
    assert ready_buttons(Instance(telegram_bot_username=None), "http://claw-1.localhost:8080") is None
    assert _urls(ready_buttons(Instance(telegram_bot_username=None), "https://claw-1.example.com")) == [
        "https://claw-1.example.com"]
