"""One cheap authenticated call that tells whether a provider accepts an API key, for
providers the operator gave a check URL (CLAWFLEET_PROVIDER_CHECK_URLS, e.g. a models list).

Only a clear refusal (401, 403) counts against the key: a provider that is slow, down or rate
limiting must not stop a deploy, which reports its own failure if the key is really bad.
"""

from __future__ import annotations

import aiohttp
import structlog
from pydantic import SecretStr

from provisioner.providers import Provider

log = structlog.get_logger(__name__)

ANTHROPIC_VERSION = "2023-06-01"  # what Anthropic's API wants named; the gateways send their own


def auth_headers(provider: Provider, key: SecretStr) -> dict[str, str]:
    """The key as the model gateway injects it (Provider.auth_headers), plus the version header
    Anthropic's Messages API requires of every caller."""
    headers = provider.auth_headers(key.get_secret_value())
    if provider.api == "anthropic-messages":
        headers["anthropic-version"] = ANTHROPIC_VERSION
    return headers


async def key_refused(http: aiohttp.ClientSession, provider: Provider, url: str, key: SecretStr,
                      timeout_s: float = 10) -> str | None:
    """Why the provider refuses the key, or None (accepted, or no clear answer)."""
    try:
        async with http.get(url, headers=auth_headers(provider, key),
                            timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        log.warning("could not check an API key", provider=provider.id, reason=type(exc).__name__)
        return None
    if status in (401, 403):
        return (f"{provider.display_name} refused this key (HTTP {status}). Check that you copied all of it "
                "and that it is still active.")
    return None
