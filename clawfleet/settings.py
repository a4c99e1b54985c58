"""Typed settings: every `CLAWFLEET_*` variable, read once at start and passed explicitly."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from accounts.delivery import smtp_server
from billing.plans import Plans, PlansError, load_plans
from db.keyfile import read_key_file
from model_gateway.prices import PricesError, load_prices
from provisioner.instance_urls import InstanceUrls, valid_domain
from provisioner.providers import PROVIDERS, get_provider

TELEGRAM_API_URL = "https://api.telegram.org"
DEFAULT_OPENCLAW_VERSION = "2026.9.6"


def _host_memory_mb() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // (1024 * 1024)


def _split_csv(value: object) -> object:
    """`a,b , c` -> ["a", "b", "c"]; lists pass through (tests build settings directly)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    if not urlsplit(value).netloc:
        raise ValueError("must name a host after http:// or https://")
    return value.rstrip("/")


def _networks(items: list[str], *, example: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """CIDRs (a bare address is its own /32 or /128), each refused by its position if not one."""
    networks = []
    for position, item in enumerate(items, start=1):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"item {position} ({item!r}) is not a network like {example}") from None
    return networks


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CLAWFLEET_",
        env_file=".env",
        extra="ignore",
        frozen=True,
    )

    data_dir: Path = Path("./data")
    database_url: str = ""  # empty: SQLite file inside data_dir
    http_host: str = "127.0.0.1"
    http_port: int = Field(8080, ge=1, le=65535)
    public_url: str = "http://localhost:8080"
    instance_domain: str = "localhost"

    runtime: Literal["process", "docker"] = "process"
    docker_url: str | None = None
    docker_endpoint: Literal["host", "network"] = "host"  # network: the platform runs in a container itself
    docker_join_container: str | None = None  # network mode: the platform's container, joined to each instance network
    docker_subnet_pool: str = "10.213.0.0/16"  # /28 per instance network
    # host firewall rules keeping instances from the metadata service and the host (provisioner/runtimes/egress.py)
    docker_egress_guard: Literal["auto", "required", "off"] = "auto"
    docker_egress_deny: Annotated[list[str], NoDecode] = ["169.254.0.0/16"]
    openclaw_version: str = DEFAULT_OPENCLAW_VERSION
    openclaw_image: str = ""  # empty: clawfleet/openclaw:<openclaw_version>
    runtime_dir: Path | None = None  # process runtime's Node.js + OpenClaw; empty: <data_dir>/runtime
    debian_mirror: str | None = None  # for images built offline; empty: the one the host's apt sources name

    secret_keys: Annotated[list[SecretStr], NoDecode] = []
    # the same keys from a file, one a line (a Docker secret): kept out of the platform's environment
    secret_keys_file: Path | None = None
    # encrypts `clawfleet backup` files (db/backup_cipher.py); unset: asked on the terminal
    backup_passphrase: SecretStr | None = None

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = TELEGRAM_API_URL
    telegram_mode: Literal["polling", "webhook"] = "polling"
    telegram_webhook_secret: SecretStr | None = None
    telegram_setup_timeout_s: float = Field(15 * 60, gt=0)  # an abandoned setup forgets what it was sent
    telegram_pacing: bool = True  # messages at Telegram's flood limits (bot/pacing.py); off only against a fake

    # the providers' base URLs the model gateway forwards to, when not their own (a company proxy, a test fake)
    provider_urls: Annotated[dict[str, str], NoDecode] = {}
    # The platform's model gateway (model_gateway/), which instances call their models through.
    # Host empty: loopback for the process runtime, every address for docker (instances come from
    # their own networks; the gateway answers only loopback and the instance pool). Port 0: any free one.
    model_gateway_host: str = ""
    model_gateway_port: int = Field(8090, ge=0, le=65535)
    model_prices_file: Path | None = None  # USD per million tokens per model; empty: the shipped table
    # The operator's own provider keys (provider=key,...), for plans that include usage (and,
    # with billing off, for CLAWFLEET_PLATFORM_KEY_USERS, each up to CLAWFLEET_PLATFORM_KEY_USD a month).
    platform_keys: Annotated[dict[str, SecretStr], NoDecode] = {}
    platform_key_users: Annotated[list[str], NoDecode] = []  # Telegram user ids and emails
    platform_key_usd: float = Field(5.0, ge=0, le=1e6)
    provider_check_urls: Annotated[dict[str, str], NoDecode] = {}  # a cheap authenticated GET per provider

    access: Literal["open", "allowlist", "invite"] = "open"
    allowed_telegram_ids: Annotated[list[int], NoDecode] = []
    allowed_emails: Annotated[list[str], NoDecode] = []

    # proxies (the HTTPS edge) whose X-Forwarded-For names the client; none by default
    trusted_proxies: Annotated[list[str], NoDecode] = []
    # login and registration budgets (accounts/throttle.py), refilled over the window
    auth_throttle_window_s: float = Field(900, gt=0)
    auth_failures_per_account: int = Field(10, ge=1)
    auth_attempts_per_address: int = Field(60, ge=1)
    # How long a token's owner or an instance read for an answer is kept in memory (db/read_cache.py).
    # This process's own writes clear it at once; the time bounds how long another process's
    # writes go unseen. 0 reads the database for every request.
    read_cache_ttl_s: float = Field(2.0, ge=0, le=60)

    # one-time links by email (accounts/delivery.py): smtp://user:pass@host:port or smtps://...
    smtp_url: SecretStr | None = None
    smtp_from: str | None = None  # the From address of those emails; needed with smtp_url

    max_instances_per_user: int = Field(1, ge=0)
    # What each gateway is given when billing is off (plans decide when it is on). An idle
    # gateway takes about 0.9-1.1 GB (lean profile, measured): room for a turn on top.
    instance_memory_mb: int = Field(1536, ge=256)
    instance_cpus: float = Field(1.0, gt=0)
    memory_budget_mb: int = Field(default_factory=lambda: _host_memory_mb() * 8 // 10, gt=0)
    start_timeout_s: float = Field(120, gt=0)
    reconcile_interval_s: float = Field(30, gt=0)
    backoff_base_s: float = Field(10, gt=0)
    backoff_max_s: float = Field(300, gt=0)
    lease_ttl_s: float = Field(30, ge=1)
    max_concurrent_starts: int = Field(2, ge=1)
    # A gateway at or above this share of its memory limit for MEMORY_RESTART_AFTER_S is restarted
    # once its model has been quiet for MEMORY_RESTART_QUIET_S, never in the middle of a reply
    # (provisioner/memory_watch.py). 0 turns it off.
    memory_restart_percent: float = Field(90, ge=0, le=100)
    memory_restart_after_s: float = Field(600, ge=0)
    memory_restart_quiet_s: float = Field(300, ge=0)
    memory_check_interval_s: float = Field(60, gt=0)
    # One agent turn inside each gateway started, answered by the model gateway (no tokens spent),
    # before it is reported running, so the owner's first answer is quicker. Unset: on with the
    # process runtime only (measured: in a docker container limited to its CPU the warm-up costs
    # the deploy more than it saves the first answer; bench/deploy.py --first-answer).
    warm_up: bool | None = None
    # The process runtime's gateways share one Node compile cache per OpenClaw version (as the
    # docker image ships one); off: each instance fills its own in its tmp dir.
    shared_compile_cache: bool = True
    data_retention_days: int = Field(30, ge=0)
    # Instance backups (provisioner/instance_backups/): how many each instance keeps, the newest,
    # and every how many hours each running instance is backed up (0: no scheduled backups),
    # while billing is off (plans say both when it is on); how often the schedule looks for
    # instances due, and how many it backs up at once.
    instance_backups_kept: int = Field(7, ge=1, le=1000)
    instance_backup_every_hours: int = Field(24, ge=0, le=8760)
    instance_backup_check_interval_s: float = Field(900, gt=0)
    instance_backup_concurrency: int = Field(2, ge=1, le=32)
    # An S3-compatible bucket each backup is uploaded to as well (off while BUCKET is unset):
    # ENDPOINT_URL empty means AWS's own; PREFIX begins every key (several platforms, one bucket).
    instance_backup_s3_bucket: str | None = None
    instance_backup_s3_endpoint_url: str | None = None
    instance_backup_s3_region: str = "us-east-1"
    instance_backup_s3_access_key_id: SecretStr | None = None
    instance_backup_s3_secret_access_key: SecretStr | None = None
    instance_backup_s3_prefix: str = ""

    # Billing is on once the Stripe key is set; it needs the plans file and the webhook secret
    # (comma-separated while rotating: a delivery signed with any of them is accepted).
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_url: str | None = None
    stripe_timeout_s: float = Field(10, gt=0, le=120)
    stripe_sync_interval_s: float = Field(3600, gt=0)  # re-read every open subscription (lost webhooks)
    # Plans with overage = "bill": the event name of the Stripe meter their overage_price is on,
    # and how often usage past the included amount is reported to it (billing.overage).
    stripe_meter_event: str = Field("clawfleet_model_overage", min_length=1, max_length=100)
    overage_report_interval_s: float = Field(300, gt=0)
    plans_file: Path | None = None
    retention_interval_s: float = Field(3600, gt=0)  # how often data past CLAWFLEET_DATA_RETENTION_DAYS is looked for

    # GET /metrics wants this as a bearer token; unset: it answers loopback peers only
    metrics_token: SecretStr | None = None
    # how often every running gateway's CPU and memory is sampled (kept a day, shown on its page)
    resource_sample_interval_s: float = Field(60, ge=5)

    # Crash tests only: the platform SIGKILLs itself at this point of a deploy.
    crash_at: Literal["before_start", "after_spawn", "after_ready"] | None = None

    log_format: Literal["console", "json"] = "console"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("secret_keys", "allowed_emails", "allowed_telegram_ids", "docker_egress_deny", "trusted_proxies",
                     mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("provider_urls", "provider_check_urls", mode="before")
    @classmethod
    def _provider_map(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        urls: dict[str, str] = {}
        for position, item in enumerate(_split_csv(value), start=1):
            provider, sep, url = item.partition("=")
            if not sep or not provider.strip() or not url.strip().startswith(("http://", "https://")):
                # the value itself is not echoed: a proxy URL may carry credentials
                raise ValueError(f"expected provider=http(s)://url pairs separated by commas; item {position} is not")
            urls[provider.strip()] = url.strip().rstrip("/")
        return urls

    @field_validator("platform_keys", mode="before")
    @classmethod
    def _platform_keys(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        keys: dict[str, SecretStr] = {}
        for position, item in enumerate(_split_csv(value), start=1):
            provider_id, sep, key = item.partition("=")
            try:
                provider = get_provider(provider_id.strip())
            except ValueError:
                raise ValueError(f"item {position} does not start with a provider id ({', '.join(p.id for p in PROVIDERS)})"
                                 "=") from None
            problem = provider.check_key_shape(key.strip()) if sep else "expected provider=key"
            if problem:  # the key itself is never echoed
                raise ValueError(f"item {position} ({provider.id}): {problem}")
            keys[provider.id] = SecretStr(key.strip())
        return keys

    @field_validator("platform_key_users", mode="before")
    @classmethod
    def _platform_key_users(cls, value: object) -> object:
        users = [str(user).strip().lower() for user in _split_csv(value)] if value else []
        for position, user in enumerate(users, start=1):
            if not (user.isdigit() or "@" in user):
                raise ValueError(f"item {position} is neither a Telegram user id (digits) nor an email address")
        return users

    @field_validator("docker_subnet_pool")
    @classmethod
    def _subnet_pool(cls, value: str) -> str:
        try:
            pool = ipaddress.ip_network(value)
        except ValueError:
            raise ValueError("must be a network in CIDR form, like 10.213.0.0/16") from None
        if pool.version != 4 or pool.prefixlen > 24:
            raise ValueError("must be an IPv4 network of /24 or larger (each instance takes a /28)")
        return str(pool)

    @field_validator("docker_egress_deny")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        networks = _networks(value, example="169.254.0.0/16")
        for position, network in enumerate(networks, start=1):
            if network.version != 4:
                raise ValueError(f"item {position} ({network}) is IPv6; instance networks are IPv4 only")
        return [str(network) for network in networks]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        return [str(network) for network in _networks(value, example="10.0.0.0/8 or 192.0.2.7")]

    @field_validator("instance_domain")
    @classmethod
    def _instance_domain(cls, value: str) -> str:
        if not valid_domain(value):
            raise ValueError("must be a domain name such as claws.example.com (or localhost on a laptop)")
        return value.strip().strip(".").lower()

    @field_validator("public_url", "telegram_api_url")
    @classmethod
    def _http_urls(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("stripe_api_url")
    @classmethod
    def _stripe_url(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None  # set but empty: no mail, as when unset
        smtp_server(value.get_secret_value())  # the value itself is never echoed: it holds a password
        return value

    @field_validator("metrics_token")
    @classmethod
    def _metrics_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # set but empty: loopback only, as when unset (never a token anyone matches by sending none)
        return SecretStr(value.get_secret_value().strip())

    @field_validator("smtp_from")
    @classmethod
    def _smtp_from(cls, value: str | None) -> str | None:
        if not value:
            return None
        local, at, domain = value.strip().rpartition("<")[2].rstrip(">").partition("@")
        if not (local and at and "." in domain) or any(ch.isspace() for ch in local + domain):
            raise ValueError("must be an email address, like clawfleet@example.com or ClawFleet <cf@example.com>")
        return value.strip()

    @field_validator("instance_backup_s3_endpoint_url")
    @classmethod
    def _s3_endpoint(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None  # set but empty: AWS's own, as when unset

    @field_validator("instance_backup_s3_bucket")
    @classmethod
    def _s3_bucket(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", value.strip()):
            raise ValueError("must be a bucket name: 3-63 lowercase letters, digits, dots and hyphens")
        return value.strip()

    @field_validator("instance_backup_s3_prefix")
    @classmethod
    def _s3_prefix(cls, value: str) -> str:
        return value.strip().strip("/")

    @field_validator("debian_mirror")
    @classmethod
    def _mirror(cls, value: str | None) -> str | None:
        return _http_url(value) if value else None  # set but empty: the host's own, as when unset

    @model_validator(mode="after")
    def _derived_defaults(self) -> Settings:
        # frozen model: fill derived defaults through object.__setattr__ once, at validation
        if not self.database_url:
            db_file = (self.data_dir / "clawfleet.db").resolve()
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{db_file}")
        if not self.openclaw_image:
            object.__setattr__(self, "openclaw_image", f"clawfleet/openclaw:{self.openclaw_version}")
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("CLAWFLEET_BACKOFF_MAX_S must be at least CLAWFLEET_BACKOFF_BASE_S")
        if self.telegram_mode == "webhook" and self.telegram_webhook_secret is None:
            raise ValueError("CLAWFLEET_TELEGRAM_MODE=webhook needs CLAWFLEET_TELEGRAM_WEBHOOK_SECRET")
        if self.smtp_url is not None and self.smtp_from is None:
            raise ValueError("CLAWFLEET_SMTP_URL needs CLAWFLEET_SMTP_FROM, the address its emails come from")
        if self.secret_keys_file is not None:
            object.__setattr__(self, "secret_keys", self._keys_from_file(self.secret_keys_file))
        if self.stripe_secret_key is not None:
            if self.plans_file is None:
                raise ValueError("CLAWFLEET_STRIPE_SECRET_KEY (billing on) needs CLAWFLEET_PLANS_FILE, the plans "
                                 "people subscribe to (see plans.example.toml)")
            if self.stripe_webhook_secret is None:
                raise ValueError("CLAWFLEET_STRIPE_SECRET_KEY (billing on) needs CLAWFLEET_STRIPE_WEBHOOK_SECRET, "
                                 "the signing secret of the Stripe endpoint /api/webhooks/stripe")
            try:
                load_plans(self.plans_file)
            except PlansError as problem:
                raise ValueError(f"CLAWFLEET_PLANS_FILE: {problem}") from None
        self._check_backup_bucket()
        if self.model_prices_file is not None:
            try:
                load_prices(self.model_prices_file)
            except PricesError as problem:
                raise ValueError(f"CLAWFLEET_MODEL_PRICES_FILE: {problem}") from None
        dashboard_host = urlsplit(self.public_url).netloc
        if InstanceUrls(self.public_url, self.instance_domain).subdomain_of(dashboard_host) is not None:
            raise ValueError(f"CLAWFLEET_PUBLIC_URL's host {dashboard_host} would be an instance's host under "
                             f"CLAWFLEET_INSTANCE_DOMAIN={self.instance_domain}: give the instances a domain "
                             "the dashboard is not in")
        return self

    def _check_backup_bucket(self) -> None:
        keys = {"ACCESS_KEY_ID": self.instance_backup_s3_access_key_id,
                "SECRET_ACCESS_KEY": self.instance_backup_s3_secret_access_key}
        if self.instance_backup_s3_bucket is None:
            if any(key is not None for key in keys.values()) or self.instance_backup_s3_endpoint_url:
                raise ValueError("CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET is not set, so the other "
                                 "CLAWFLEET_INSTANCE_BACKUP_S3_ settings would do nothing: set the bucket too")
            return
        for name, key in keys.items():
            if key is None or not key.get_secret_value().strip():
                raise ValueError(f"CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET needs CLAWFLEET_INSTANCE_BACKUP_S3_{name}")

    def _keys_from_file(self, path: Path) -> list[SecretStr]:
        if self.secret_keys:
            raise ValueError("set CLAWFLEET_SECRET_KEYS or CLAWFLEET_SECRET_KEYS_FILE, not both")
        try:
            keys = read_key_file(path)
        except OSError as exc:
            raise ValueError(f"CLAWFLEET_SECRET_KEYS_FILE: cannot read {path} ({exc.strerror})") from None
        if not keys:
            raise ValueError(f"CLAWFLEET_SECRET_KEYS_FILE: {path} holds no key (one a line)")
        return [SecretStr(key) for key in keys]

    @property
    def resolved_runtime_dir(self) -> Path:
        return self.runtime_dir or self.data_dir / "runtime"

    @property
    def resolved_model_gateway_host(self) -> str:
        return self.model_gateway_host or ("127.0.0.1" if self.runtime == "process" else "0.0.0.0")

    @property
    def billing_enabled(self) -> bool:
        return self.stripe_secret_key is not None

    @property
    def plans(self) -> Plans:
        """The plans file, read again (it was checked at validation); only with billing on."""
        assert self.plans_file is not None
        return load_plans(self.plans_file)

    @property
    def stripe_webhook_secrets(self) -> tuple[SecretStr, ...]:
        text = self.stripe_webhook_secret.get_secret_value() if self.stripe_webhook_secret else ""
        return tuple(SecretStr(part.strip()) for part in text.split(",") if part.strip())

    @property
    def bot_enabled(self) -> bool:
        return self.telegram_bot_token is not None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SettingsError(Exception):
    """A bad configuration value, explained in one line naming the variable."""


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None


def describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        message = error["msg"].removeprefix("Value error, ")
        if field:
            problems.append(f"CLAWFLEET_{field.upper()}: {message}")
        else:
            problems.append(message)
    return "invalid configuration: " + "; ".join(problems)
