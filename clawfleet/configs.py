"""Settings turned into each layer's own configuration: the one place that knows both, so no
layer below reads settings (the runtime's own are in clawfleet/runtime.py)."""

from __future__ import annotations

import ipaddress

from accounts.access import AccessConfig
from accounts.delivery import Mail, smtp_server
from accounts.throttle import ThrottleConfig
from billing.outbox import OutboxConfig
from billing.service import BillingConfig
from billing.stripe_client import StripeConfig
from bot.application import BotConfig
from clawfleet import __version__
from clawfleet.settings import TELEGRAM_API_URL, Settings
from model_gateway.server import ModelGatewayConfig, allowed_peers
from provisioner.entitlements import OperatorDefaults
from provisioner.instance_urls import InstanceUrls
from provisioner.instance_backups.keeper import KeeperConfig
from provisioner.instance_backups.s3 import S3Config
from provisioner.instance_backups.schedule import ScheduleConfig
from provisioner.manager import ManagerConfig
from provisioner.reconcile.decisions import Backoff
from provisioner.memory_watch import MemoryWatchConfig
from provisioner.reconcile.reconciler import ReconcilerConfig
from provisioner.retention import RetentionConfig
from provisioner.service import ServiceConfig
from web import telegram_webhook
from web.services import WebConfig


def access_config(settings: Settings) -> AccessConfig:
    return AccessConfig(settings.access, frozenset(settings.allowed_telegram_ids),
                        frozenset(settings.allowed_emails))


def throttle_config(settings: Settings) -> ThrottleConfig:
    return ThrottleConfig(settings.auth_throttle_window_s, settings.auth_failures_per_account,
                          settings.auth_attempts_per_address)


def mail_config(settings: Settings) -> Mail | None:
    """How links go out by email; None without CLAWFLEET_SMTP_URL."""
    if settings.smtp_url is None:
        return None
    return Mail(smtp_server(settings.smtp_url.get_secret_value()), settings.smtp_from)


def operator_defaults(settings: Settings) -> OperatorDefaults:
    """What each user may run while billing is off."""
    users = frozenset(int(user) if user.isdigit() else user for user in settings.platform_key_users)
    return OperatorDefaults(settings.max_instances_per_user, settings.instance_memory_mb, settings.instance_cpus,
                            platform_key_usd=settings.platform_key_usd if settings.platform_keys else 0.0,
                            platform_key_users=users, backup_every_hours=settings.instance_backup_every_hours,
                            backups_kept=settings.instance_backups_kept)


def manager_config(settings: Settings, model_gateway_port: int | None = None) -> ManagerConfig:
    return ManagerConfig(
        start_timeout_s=settings.start_timeout_s,
        max_concurrent_starts=settings.max_concurrent_starts,
        # gateways are pointed at a Bot API only when it is not Telegram's own (a proxy, a test fake)
        telegram_api_root=settings.telegram_api_url if settings.telegram_api_url != TELEGRAM_API_URL else None,
        model_gateway_port=model_gateway_port,
        lease_ttl_s=settings.lease_ttl_s,
        backoff=Backoff(settings.backoff_base_s, settings.backoff_max_s),
        crash_at=settings.crash_at,
        instance_urls=InstanceUrls(settings.public_url, settings.instance_domain),
        warm_up=settings.warm_up if settings.warm_up is not None else settings.runtime == "process",
    )


def keeper_config(settings: Settings) -> KeeperConfig:
    return KeeperConfig(openclaw_version=settings.openclaw_version)


def s3_config(settings: Settings) -> S3Config | None:
    """The bucket instance backups are uploaded to; None without CLAWFLEET_INSTANCE_BACKUP_S3_BUCKET."""
    if settings.instance_backup_s3_bucket is None:
        return None
    assert settings.instance_backup_s3_access_key_id and settings.instance_backup_s3_secret_access_key
    return S3Config(bucket=settings.instance_backup_s3_bucket,
                    access_key_id=settings.instance_backup_s3_access_key_id,
                    secret_access_key=settings.instance_backup_s3_secret_access_key,
                    region=settings.instance_backup_s3_region, endpoint_url=settings.instance_backup_s3_endpoint_url,
                    prefix=settings.instance_backup_s3_prefix)


def schedule_config(settings: Settings) -> ScheduleConfig:
    return ScheduleConfig(interval_s=settings.instance_backup_check_interval_s,
                          concurrency=settings.instance_backup_concurrency)


def service_config(settings: Settings) -> ServiceConfig:
    return ServiceConfig(
        telegram_api_url=settings.telegram_api_url,
        provisioning_bot_token=settings.telegram_bot_token,
        memory_budget_mb=settings.memory_budget_mb,
        public_url=settings.public_url,
        instance_domain=settings.instance_domain,
        provider_check_urls=dict(settings.provider_check_urls),
        read_cache_ttl_s=settings.read_cache_ttl_s,
        platform_key_providers=frozenset(settings.platform_keys),
    )


def reconciler_config(settings: Settings) -> ReconcilerConfig:
    return ReconcilerConfig(interval_s=settings.reconcile_interval_s, lease_ttl_s=settings.lease_ttl_s)


def memory_watch_config(settings: Settings) -> MemoryWatchConfig:
    return MemoryWatchConfig(threshold_percent=settings.memory_restart_percent,
                             sustained_s=settings.memory_restart_after_s, quiet_s=settings.memory_restart_quiet_s,
                             interval_s=settings.memory_check_interval_s, lease_ttl_s=settings.lease_ttl_s)


def bot_config(settings: Settings) -> BotConfig:
    assert settings.telegram_bot_token is not None
    return BotConfig(
        token=settings.telegram_bot_token,
        api_url=settings.telegram_api_url,
        mode=settings.telegram_mode,
        webhook_url=settings.public_url + telegram_webhook.PATH,
        webhook_secret=settings.telegram_webhook_secret,
        conversation_timeout_s=settings.telegram_setup_timeout_s,
        lease_ttl_s=settings.lease_ttl_s,
        pacing=settings.telegram_pacing,
    )


def web_config(settings: Settings, telegram_bot_username: str | None = None) -> WebConfig:
    return WebConfig(version=__version__, telegram_webhook_secret=settings.telegram_webhook_secret,
                     trusted_proxies=tuple(ipaddress.ip_network(network) for network in settings.trusted_proxies),
                     public_url=str(settings.public_url).rstrip("/"), telegram_bot_username=telegram_bot_username,
                     data_retention_days=settings.data_retention_days, metrics_token=settings.metrics_token)


def stripe_config(settings: Settings) -> StripeConfig:
    assert settings.stripe_secret_key is not None
    return StripeConfig(secret_key=settings.stripe_secret_key, api_url=settings.stripe_api_url,
                        timeout_s=settings.stripe_timeout_s)


def billing_config(settings: Settings) -> BillingConfig:
    return BillingConfig(plans=settings.plans, public_url=str(settings.public_url).rstrip("/"),
                         webhook_secrets=settings.stripe_webhook_secrets,
                         data_retention_days=settings.data_retention_days)


def outbox_config(settings: Settings) -> OutboxConfig:
    return OutboxConfig(lease_ttl_s=settings.lease_ttl_s)


def model_gateway_config(settings: Settings) -> ModelGatewayConfig:
    """Docker instances call from their networks' pool; process gateways from loopback."""
    pools = [settings.docker_subnet_pool] if settings.runtime == "docker" else []
    return ModelGatewayConfig(host=settings.resolved_model_gateway_host, port=settings.model_gateway_port,
                              peers=allowed_peers(pools))


def retention_config(settings: Settings) -> RetentionConfig:
    return RetentionConfig(retention_days=settings.data_retention_days, interval_s=settings.retention_interval_s)
