"""The providers table: key shapes (good and bad, per provider) and, against the installed
OpenClaw, that every id, endpoint and model in the table is one OpenClaw 2026.9.6 knows."""

from __future__ import annotations

import json
import re

import pytest

from provisioner.providers import PROVIDERS, get_provider

TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
ANTHROPIC_KEY = "sk-ant-api03-" + "a1B2_c3-" * 11 + "AA"
OPENAI_PROJECT_KEY = "sk-proj-" + "Ab1_Cd2-" * 18
OPENAI_LEGACY_KEY = "sk-" + "x7Y" * 16
MOONSHOT_KEY = "sk-" + "Mn0pQ" * 10
KIMI_CODING_KEY = "sk-kimi-" + "k9Zq" * 12


def test_the_four_providers_with_their_key_variables() -> None:
    assert [(p.id, p.openclaw_id, p.key_env) for p in PROVIDERS] == [
        ("anthropic", "anthropic", "ANTHROPIC_API_KEY"),
        ("openai", "openai", "OPENAI_API_KEY"),
        ("moonshot", "moonshot", "MOONSHOT_API_KEY"),
        ("kimi-coding", "kimi", "KIMI_API_KEY"),  # OpenClaw's canonical id; kimi-coding is its alias
    ]
    for provider in PROVIDERS:
        assert provider.models[0] == provider.default_model  # offered in display order, default first
        assert len(set(provider.models)) == len(provider.models)
        assert provider.model_ref(provider.default_model) == f"{provider.openclaw_id}/{provider.default_model}"


GOOD_KEYS = [
    ("anthropic", ANTHROPIC_KEY),
    ("anthropic", "sk-ant-api03-" + "Z" * 40),
    ("openai", OPENAI_PROJECT_KEY),
    ("openai", OPENAI_LEGACY_KEY),
    ("openai", "sk-svcacct-" + "Qw3" * 20),
    ("moonshot", MOONSHOT_KEY),
    ("kimi-coding", KIMI_CODING_KEY),
    ("kimi-coding", "sk-" + "Ki7" * 16),  # older Kimi Code keys: plain sk-
]


@pytest.mark.parametrize(("provider", "key"), GOOD_KEYS)
def test_real_looking_keys_pass(provider: str, key: str) -> None:
    assert get_provider(provider).check_key_shape(key) is None


BAD_KEYS = [
    # a Telegram bot token pasted into the API key field, for every provider
    *[(p.id, TELEGRAM_TOKEN, "looks like a Telegram bot token") for p in PROVIDERS],
    # another provider's key, recognisable by its prefix
    ("anthropic", OPENAI_PROJECT_KEY, "looks like an API key for OpenAI, not for Anthropic"),
    ("openai", ANTHROPIC_KEY, "looks like an API key for Anthropic (Claude), not for OpenAI"),
    ("moonshot", ANTHROPIC_KEY, "looks like an API key for Anthropic (Claude)"),
    ("moonshot", OPENAI_PROJECT_KEY, "looks like an API key for OpenAI,"),
    ("moonshot", KIMI_CODING_KEY, "looks like an API key for Kimi Coding, not for Kimi (Moonshot)"),
    ("kimi-coding", ANTHROPIC_KEY, "looks like an API key for Anthropic (Claude)"),
    ("kimi-coding", OPENAI_PROJECT_KEY, "looks like an API key for OpenAI,"),
    # keys of the right company but the wrong kind
    ("anthropic", "sk-ant-admin01-" + "b" * 60, "Admin key"),
    ("anthropic", "sk-ant-oat01-" + "c" * 60, "subscription token"),
    ("openai", "sk-admin-" + "d" * 40, "Admin key"),
    # not keys at all
    ("moonshot", "sk-abc def" + "g" * 30, "no spaces"),
    ("openai", OPENAI_LEGACY_KEY + "\n", "no spaces"),
    ("anthropic", "", "empty"),
    ("kimi-coding", "hello", "does not look like an API key for Kimi Coding"),
    ("openai", "sk-short", "does not look like an API key for OpenAI"),
    ("openai", "sk-" + "é" * 30, "does not look like"),
    ("openai", "sk-" + "a" * 600, "does not look like"),
    ("anthropic", "https://console.anthropic.com/settings/keys", "does not look like"),
]


@pytest.mark.parametrize(("provider", "key", "problem"), BAD_KEYS)
def test_wrong_keys_are_explained_without_echoing_them(provider: str, key: str, problem: str) -> None:
    message = get_provider(provider).check_key_shape(key)
    assert message is not None and problem in message
    assert get_provider(provider).key_hint in message  # every refusal says what a key looks like
    if key:
        assert key not in message and key[-12:] not in message


def test_unknown_provider_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="choose one of: anthropic, openai, moonshot, kimi-coding"):
        get_provider("skynet")
    with pytest.raises(ValueError, match="Unknown model provider"):
        get_provider(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Unknown model provider 'kimi'"):
        get_provider("kimi")  # OpenClaw's id is not ClawFleet's


# -- against the installed OpenClaw: the table holds what 2026.9.6 actually knows -------------

@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p.bundled], ids=lambda p: p.id)
def test_bundled_providers_match_their_plugin_manifest(provider, openclaw_install) -> None:
    manifest_path = openclaw_install.package_dir / "dist" / "extensions" / provider.openclaw_id / "openclaw.plugin.json"
    manifest = json.loads(manifest_path.read_text())
    catalog = manifest["modelCatalog"]["providers"][provider.openclaw_id]
    known = {model["id"] for model in catalog["models"]}
    assert set(provider.models) <= known, f"not in OpenClaw's catalog: {set(provider.models) - known}"
    assert (catalog["baseUrl"], catalog["api"]) == (provider.base_url, provider.api)
    env_vars = {var for entry in manifest["setup"]["providers"] if entry["id"] == provider.openclaw_id
                for var in entry["envVars"]}
    assert provider.key_env in env_vars


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if not p.bundled], ids=lambda p: p.id)
def test_external_providers_match_openclaws_docs(provider, openclaw_install) -> None:
    # Not bundled, so no manifest in the package: its provider docs are the catalog it ships.
    docs = (openclaw_install.package_dir / "docs" / "providers" / "moonshot.md").read_text()
    extensions = openclaw_install.package_dir / "dist" / "extensions"
    assert not (extensions / provider.openclaw_id).exists()  # still external in this release
    known = set(re.findall(rf"`{re.escape(provider.openclaw_id)}/([a-z0-9.-]+)`", docs))
    assert set(provider.models) <= known, f"not in OpenClaw's docs: {set(provider.models) - known}"
    assert provider.key_env in docs and provider.base_url.removeprefix("https://") in docs
