"""The bot's own profile: getMe, its name and descriptions per language, its command lists per scope
and language."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.fakes.telegram.dispatch import api_method
from tests.fakes.telegram.params import Params
from tests.fakes.telegram.protocol import JsonDict, bad_request
from tests.fakes.telegram.state import BotState, deep_copy


class BotProfile(BotState):
    """Texts are kept per language code ("" for all); commands per scope and language code."""

    @api_method("getMe")
    async def _get_me(self, p: Params) -> JsonDict:
        return {**self.as_user(), "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False,
                "has_topics_enabled": False, "allows_users_to_create_topics": False}

    def _profile(self, p: Params, field_name: str, limit: int, what: str) -> bool:
        value = p.text(field_name) or ""
        if len(value) > limit:
            raise bad_request(f"{what} is too long")
        key = (field_name, p.text("language_code") or "")
        if value:
            self.profile[key] = value
        else:
            self.profile.pop(key, None)
        return True

    def _profile_value(self, p: Params, field_name: str, default: str) -> JsonDict:
        language = p.text("language_code") or ""
        value = self.profile.get((field_name, language), self.profile.get((field_name, ""), default))
        return {field_name: value}

    @api_method("setMyName")
    async def _set_my_name(self, p: Params) -> bool:
        return self._profile(p, "name", 64, "bot name")

    @api_method("getMyName")
    async def _get_my_name(self, p: Params) -> JsonDict:
        return self._profile_value(p, "name", self.first_name)

    @api_method("setMyDescription")
    async def _set_my_description(self, p: Params) -> bool:
        return self._profile(p, "description", 512, "bot description")

    @api_method("getMyDescription")
    async def _get_my_description(self, p: Params) -> JsonDict:
        return self._profile_value(p, "description", "")

    @api_method("setMyShortDescription")
    async def _set_my_short_description(self, p: Params) -> bool:
        return self._profile(p, "short_description", 120, "bot short description")

    @api_method("getMyShortDescription")
    async def _get_my_short_description(self, p: Params) -> JsonDict:
        return self._profile_value(p, "short_description", "")

    @api_method("setMyCommands")
    async def _set_my_commands(self, p: Params) -> bool:
        commands = p.json("commands", what="commands") or []  # no commands: an empty list, as Telegram
        if not isinstance(commands, list):
            raise bad_request("can't parse commands JSON object")
        if len(commands) > 100:
            raise bad_request("too many commands specified")
        for command in commands:
            if not isinstance(command, dict):
                raise bad_request("can't parse BotCommand: expected an Object")
            for key in ("command", "description"):
                if key not in command:
                    raise bad_request(f'can\'t parse BotCommand: Can\'t find field "{key}"')
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command["command"])):
                raise bad_request("BOT_COMMAND_INVALID")
            description = str(command["description"])
            if not description.strip():
                raise bad_request("command description must be non-empty")
            if len(description) > 256:
                raise bad_request("command description is too long")
        key = (self._scope_key(p.json("scope", what="bot command scope")), p.text("language_code") or "")
        self._commands[key] = [{"command": c["command"], "description": c["description"]} for c in commands]
        return True

    @api_method("getMyCommands")
    async def _get_my_commands(self, p: Params) -> list[JsonDict]:
        return self.commands(p.json("scope", what="bot command scope"), p.text("language_code") or "")

    @api_method("deleteMyCommands")
    async def _delete_my_commands(self, p: Params) -> bool:
        key = (self._scope_key(p.json("scope", what="bot command scope")), p.text("language_code") or "")
        self._commands.pop(key, None)
        return True

    def commands(self, scope: JsonDict | None = None, language_code: str = "") -> list[JsonDict]:
        return deep_copy(self._commands.get((self._scope_key(scope), language_code), []))

    @staticmethod
    def _scope_key(scope: Any) -> str:
        return json.dumps(scope or {"type": "default"}, sort_keys=True)
