"""How the Bot API reads a method's parameters: from the query string and a JSON, form or multipart
body, each decoded as Telegram reads that parameter, with Telegram's answers to malformed ones."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.telegram.protocol import JsonDict, bad_request

_JSON_PARAMS = frozenset({
    "reply_markup", "reply_parameters", "allowed_updates", "commands", "scope", "reaction", "entities",
    "caption_entities", "link_preview_options", "message_ids", "media",
})
_INT_PARAMS = frozenset({
    "chat_id", "message_id", "offset", "limit", "timeout", "reply_to_message_id", "message_thread_id",
    "cache_time", "max_connections", "user_id", "from_chat_id", "draft_id",
})
_BOOL_PARAMS = frozenset({
    "disable_notification", "protect_content", "show_alert", "drop_pending_updates", "is_big",
    "disable_web_page_preview", "allow_sending_without_reply", "disable_content_type_detection",
})
INTEGER = re.compile(r"-?\d+")


@dataclass
class Upload:
    filename: str | None
    content_type: str | None
    data: bytes


def normalise(values: JsonDict) -> JsonDict:
    """Form fields arrive as strings; decode them the way Telegram reads each parameter."""
    normalised: JsonDict = {}
    for key, value in values.items():
        if isinstance(value, str):
            if key in _JSON_PARAMS:
                try:
                    value = json.loads(value)
                except ValueError:
                    pass  # left as a string: the method answers "can't parse ..."
            elif key in _INT_PARAMS and INTEGER.fullmatch(value.strip()):
                value = int(value)
            elif key in _BOOL_PARAMS and value.lower() in ("true", "false", "1", "0"):
                value = value.lower() in ("true", "1")
        normalised[key] = value
    return normalised


async def read_params(request: web.Request) -> tuple[JsonDict, dict[str, Upload]]:
    values: JsonDict = dict(request.query)
    files: dict[str, Upload] = {}
    if request.method != "POST" or not request.can_read_body:
        return values, files
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            raise bad_request("can't parse JSON object") from None
        if not isinstance(body, dict):
            raise bad_request("JSON object expected")
        values.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = Upload(value.filename, value.content_type, value.file.read())
            else:
                values[key] = value if isinstance(value, str) else bytes(value).decode()
    return values, files


class Params:
    def __init__(self, values: JsonDict, files: dict[str, Upload]) -> None:
        self.values = values
        self.files = files

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return None if value is None else str(value)

    def integer(self, name: str, *, missing: str | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if missing:
                raise bad_request(missing)
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad_request(f"invalid {name} specified")
        return int(value)

    def flag(self, name: str) -> bool:
        return self.values.get(name) is True

    def json(self, name: str, *, what: str) -> Any:
        value = self.values.get(name)
        if isinstance(value, str):
            raise bad_request(f"can't parse {what} JSON object")
        return value
