"""The model providers ClawFleet offers: the only place that knows them.

Checked against OpenClaw 2026.9.6 as installed (tests/test_providers.py reads the same sources):
  - anthropic, openai: bundled plugins; ids, endpoints, API adapters and model ids from their
    manifests (dist/extensions/<id>/openclaw.plugin.json, modelCatalog). They read their key
    from the env var by themselves.
  - moonshot, Kimi Coding: external plugins upstream (@openclaw/moonshot-provider,
    @openclaw/kimi-provider), not in the package. ClawFleet declares them as explicit
    `models.providers` entries instead (see provisioner.openclaw.config), so nothing is
    downloaded at gateway start; model ids from the package's docs/providers/moonshot.md.
  - Kimi Coding's canonical OpenClaw id is `kimi` (`kimi-coding` is its registered alias).
    ClawFleet keeps `kimi-coding` as its own id (the API and database contract) and writes
    `kimi` into openclaw.json (`Provider.openclaw_id`), as OpenClaw's docs do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from provisioner.telegram_check import TOKEN_SHAPE as _TELEGRAM_TOKEN

_MAX_KEY_LENGTH = 512


@dataclass(frozen=True)
class Lookalike:
    """A key shape that belongs to something else; refusing it saves a failed deploy."""

    pattern: re.Pattern[str]
    problem: str  # said to the user; never contains the key


@dataclass(frozen=True)
class Provider:
    id: str  # ClawFleet's id (API, database); OpenClaw's id or one of its aliases
    display_name: str
    key_env: str  # where OpenClaw itself would look for the key; ClawFleet never sets it (model_gateway/ holds keys)
    key_pattern: re.Pattern[str]  # fullmatch: loose enough for real keys
    key_hint: str  # what a key looks like and where to get one, for error messages
    default_model: str
    models: tuple[str, ...]  # offered, default first; ids as OpenClaw 2026.9.6 knows them
    api: str  # OpenClaw's API adapter (models.providers.<id>.api)
    bundled: bool  # True: a plugin inside the openclaw package; False: declared explicitly
    base_url: str  # the provider's own endpoint (explicit entries need it)
    openclaw_id: str = ""  # the id inside openclaw.json when it differs from `id`
    lookalikes: tuple[Lookalike, ...] = ()  # keys of the wrong kind for this provider
    # Headers OpenClaw sends only to the provider's own endpoint, put back for the model
    # gateway's route (OpenClaw's "proxy-route shaping" drops them for any other baseUrl).
    route_headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not self.openclaw_id:
            object.__setattr__(self, "openclaw_id", self.id)

    def model_ref(self, model: str) -> str:
        """`<provider>/<model>` as OpenClaw's agents.defaults.model.primary wants it."""
        return f"{self.openclaw_id}/{model}"

    def auth_headers(self, key: str) -> dict[str, str]:
        """How a request to this provider carries its key, by API style: Anthropic's Messages API
        (Anthropic itself and Kimi Coding's Anthropic-compatible endpoint) takes `x-api-key`, the
        OpenAI-style APIs (OpenAI, Moonshot) a Bearer token. The model gateway and the key check
        both send keys this way, so a key is checked exactly as it will be used."""
        if self.api == "anthropic-messages":
            return {"x-api-key": key}
        return {"Authorization": f"Bearer {key}"}

    def check_key_shape(self, key: str) -> str | None:
        """A readable problem with the key's shape, or None. Never quotes the key."""
        if not key:
            return f"The API key is empty. {self.key_hint}"
        if any(ch.isspace() for ch in key):
            return f"An API key has no spaces or line breaks. {self.key_hint}"
        if len(key) > _MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
            return f"That does not look like an API key for {self.display_name}. {self.key_hint}"
        if _TELEGRAM_TOKEN.fullmatch(key):
            return f"That looks like a Telegram bot token, not an API key for {self.display_name}. {self.key_hint}"
        for lookalike in self.lookalikes:
            if lookalike.pattern.match(key):
                return f"{lookalike.problem} {self.key_hint}"
        for other in PROVIDERS:
            if other.id != self.id and _is_distinctive_key_of(other, key):
                return (f"That looks like an API key for {other.display_name}, not for {self.display_name}. "
                        f"{self.key_hint}")
        if not self.key_pattern.fullmatch(key):
            return f"That does not look like an API key for {self.display_name}. {self.key_hint}"
        return None


def _is_distinctive_key_of(provider: Provider, key: str) -> bool:
    """Keys whose prefix names their provider (sk-ant-, sk-proj-, sk-kimi-): safe to recognise."""
    prefix = _DISTINCTIVE_PREFIXES.get(provider.id)
    return prefix is not None and prefix.match(key) is not None and provider.key_pattern.fullmatch(key) is not None


_DISTINCTIVE_PREFIXES = {
    "anthropic": re.compile(r"sk-ant-"),
    "openai": re.compile(r"sk-(proj|svcacct)-"),
    "kimi-coding": re.compile(r"sk-kimi-"),
}

_SK_KEY = re.compile(r"sk-[A-Za-z0-9_-]{20,}")

PROVIDERS: tuple[Provider, ...] = (
    Provider(
        id="anthropic",
        display_name="Anthropic (Claude)",
        key_env="ANTHROPIC_API_KEY",
        key_pattern=re.compile(r"sk-ant-[A-Za-z0-9_-]{20,}"),
        key_hint="Anthropic API keys start with sk-ant-api (console.anthropic.com → API keys).",
        default_model="claude-sonnet-5",
        models=("claude-sonnet-5", "claude-opus-5", "claude-opus-5-5", "claude-haiku-4-5", "claude-opus-4-8"),
        api="anthropic-messages",
        bundled=True,
        base_url="https://api.anthropic.com",
        # Measured on 2026.9.6: with any other baseUrl the agent's turns lose this beta (thinking
        # between tool calls); its helper calls still send it. Claude Code's OAuth betas stay
        # dropped: ClawFleet refuses subscription tokens anyway.
        route_headers=(("anthropic-beta", "interleaved-thinking-2025-05-14"),),
        lookalikes=(
            Lookalike(re.compile(r"sk-ant-admin"), "That is an Anthropic Admin key, which cannot run models."),
            Lookalike(re.compile(r"sk-ant-oat"),
                      "That is a Claude subscription token (claude setup-token), not an API key."),
        ),
    ),
    Provider(
        id="openai",
        display_name="OpenAI",
        key_env="OPENAI_API_KEY",
        key_pattern=_SK_KEY,
        key_hint="OpenAI API keys start with sk- (platform.openai.com → API keys).",
        default_model="gpt-5.5",
        models=("gpt-5.5", "gpt-6-astra", "gpt-6-sol", "gpt-6-luna", "gpt-5.6-luna", "gpt-5.4-mini"),
        api="openai-responses",
        bundled=True,
        base_url="https://api.openai.com/v1",
        lookalikes=(
            Lookalike(re.compile(r"sk-admin-"), "That is an OpenAI Admin key, which cannot run models."),
        ),
    ),
    Provider(
        id="moonshot",
        display_name="Kimi (Moonshot)",
        key_env="MOONSHOT_API_KEY",
        key_pattern=_SK_KEY,
        key_hint="Moonshot API keys start with sk- (platform.moonshot.ai → API keys).",
        default_model="kimi-k3",
        models=("kimi-k3", "kimi-k2.7-code", "kimi-k2.7-code-highspeed"),
        api="openai-completions",
        bundled=False,
        base_url="https://api.moonshot.ai/v1",
    ),
    Provider(
        id="kimi-coding",
        openclaw_id="kimi",
        display_name="Kimi Coding",
        key_env="KIMI_API_KEY",
        key_pattern=_SK_KEY,
        key_hint="Kimi Coding keys start with sk-kimi- (kimi.com/code console); Moonshot platform keys "
                 "do not work here.",
        default_model="kimi-for-coding",
        models=("kimi-for-coding", "kimi-for-coding-highspeed", "k3", "k3-256k"),
        api="anthropic-messages",  # its Anthropic-compatible endpoint, as OpenClaw's own plugin uses
        bundled=False,
        base_url="https://api.kimi.com/coding",
    ),
)

_BY_ID = {provider.id: provider for provider in PROVIDERS}


def get_provider(provider_id: str) -> Provider:
    try:
        return _BY_ID[provider_id]
    except (KeyError, TypeError):
        shown = provider_id[:40] if isinstance(provider_id, str) else type(provider_id).__name__
        raise ValueError(f"Unknown model provider {shown!r}; choose one of: {', '.join(_BY_ID)}.") from None
