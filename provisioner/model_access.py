"""How an instance reaches its models: through the platform's model gateway (model_gateway/),
never with a provider key of its own.

Each instance's openclaw.json names, as its provider's `baseUrl`, its own route on the model
gateway (`route_url`) and, as `apiKey`, a credential made for it alone (`new_credential`): random,
stored sealed (to be written into the instance at each start) and hashed (for the gateway to
check), replaced whenever the provider or its key changes. The agent inside the instance can
read the credential, as it can read anything there; it opens nothing anywhere else: the model
gateway takes it only on the instance's own route, from the instances' networks.

The route's host is left for the runtime to fill in (`PLATFORM_HOST`): the platform's address
as the instance sees it differs per runtime (loopback for a process, the bridge's or the
platform container's address on a docker instance network).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import uuid

from pydantic import SecretStr

from db.models import Instance
from db.sealing import KeyRing, seal_into

PLATFORM_HOST = "{platform}"  # in a route URL: the platform's address as the instance reaches it
ROUTE_PREFIX = "/i/"  # the model gateway's routes: /i/<instance id>/<the provider's own path>
CREDENTIAL_PREFIX = "cf-model-"  # recognisable in a leak report, unlike any provider's key


def route_url(port: int, instance_id: uuid.UUID) -> str:
    """The instance's base URL on the model gateway, its host still PLATFORM_HOST."""
    return f"http://{PLATFORM_HOST}:{port}{ROUTE_PREFIX}{instance_id}"


def with_platform_host(url: str, address: str | None) -> str:
    """`url` with PLATFORM_HOST replaced by `address` (an IP address); a URL without it (a test's
    own fake model) comes back unchanged."""
    if PLATFORM_HOST not in url:
        return url
    if address is None:
        raise ValueError("the instance's model route needs the platform's address on its network")
    host = ipaddress.ip_address(address)
    return url.replace(PLATFORM_HOST, f"[{host}]" if host.version == 6 else str(host))


def new_credential() -> str:
    return CREDENTIAL_PREFIX + secrets.token_urlsafe(32)


def credential_hash(credential: str) -> str:
    """What is stored and compared: a SHA-256 is enough for 256 random bits (no guessing to slow)."""
    return hashlib.sha256(credential.encode()).hexdigest()


def credential_matches(presented: str, stored_hash: str | None) -> bool:
    return stored_hash is not None and hmac.compare_digest(credential_hash(presented), stored_hash)


def issue_credential(keyring: KeyRing, instance: Instance) -> SecretStr:
    """Give `instance` (a row in a session, committed by the caller) a new credential, which
    revokes the one before it."""
    credential = SecretStr(new_credential())
    seal_into(keyring, instance, "model_credential_sealed", credential)
    instance.model_credential_hash = credential_hash(credential.get_secret_value())
    return credential


def revoke_credential(instance: Instance) -> None:
    """The instance's credential opens nothing from now on; its next start issues a new one."""
    instance.model_credential_sealed = None
    instance.model_credential_hash = None
