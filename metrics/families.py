"""Every metric family of the platform, made on one registry per platform (not the client
library's global one, so several platforms in one process, as in the tests, never collide).

Labels take values from small fixed sets only (route patterns, statuses, provider ids, event
kinds): a label fed from user input would let anyone grow the series without bound. Gauges
whose truth is in the database are set at scrape time by the readers registered with
`read_at_scrape`, so every platform process serves the same figures."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = structlog.get_logger(__name__)

# Seconds: most requests take milliseconds; progress and log streams stay open for minutes.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Seconds from a start's beginning to ready: about 15 s alone, near a minute with four at once.
DEPLOY_BUCKETS = (5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300)

Reader = Callable[[], Awaitable[None]]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self._readers: list[Reader] = []
        on = {"registry": self.registry}

        # web
        self.http_requests = Counter("clawfleet_http_requests", "HTTP requests answered, by the matched route's "
                                     "pattern, method and status.", ["route", "method", "status"], **on)
        self.http_latency = Histogram("clawfleet_http_request_duration_seconds", "Time to answer an HTTP request, "
                                      "by the matched route's pattern.", ["route", "method"], buckets=REQUEST_BUCKETS,
                                      **on)
        # bot
        self.bot_updates = Counter("clawfleet_bot_updates", "Telegram updates the provisioning bot handled, by kind "
                                   "(message, callback_query, ...).", ["kind"], **on)
        # provisioner
        self.deploys_started = Counter("clawfleet_deploys_started", "Gateway starts begun (deploys, restarts, "
                                       "crash recoveries).", **on)
        self.deploys_finished = Counter("clawfleet_deploys_finished", "Gateway starts ended, by outcome: succeeded "
                                        "(ready), failed, or cancelled (pre-empted, shut down).", ["outcome"], **on)
        self.deploy_duration = Histogram("clawfleet_deploy_duration_seconds", "Time from a start's beginning to its "
                                         "end, by outcome.", ["outcome"], buckets=DEPLOY_BUCKETS, **on)
        self.reconcile_passes = Counter("clawfleet_reconcile_passes", "Reconciler passes over every instance.", **on)
        self.reconcile_drift = Counter("clawfleet_reconcile_drift", "Instances a reconciler pass found not matching "
                                       "their recorded status, by what it did about it.", ["act"], **on)
        self.instances = Gauge("clawfleet_instances", "Instances by status, read from the database at scrape time.",
                               ["status"], **on)
        self.gateways_sampled = Gauge("clawfleet_gateways_sampled", "Gateways in the latest resource samples.", **on)
        self.gateways_memory = Gauge("clawfleet_gateways_memory_bytes", "Memory used by all sampled gateways "
                                     "together, from their latest samples.", **on)
        self.gateway_memory_share_max = Gauge("clawfleet_gateway_memory_limit_ratio_max", "The fullest gateway's "
                                              "memory as a share of its limit (0-1), from the latest samples.", **on)
        self.instance_backups_taken = Counter("clawfleet_instance_backups_taken", "Instance backups stored, by "
                                              "kind (manual, scheduled, pre-restore, ...).", ["kind"], **on)
        self.instance_backups_failed = Counter("clawfleet_instance_backups_failed", "Instance backups that failed, "
                                               "by kind.", ["kind"], **on)
        self.instance_backup_upload_failures = Counter("clawfleet_instance_backup_upload_failures", "Uploads of "
                                                       "an instance backup to the S3 bucket that failed (each "
                                                       "is tried again by the next scheduled round).", **on)
        self.instance_backups_not_uploaded = Gauge("clawfleet_instance_backups_not_uploaded", "Instance backups "
                                                   "whose upload to the bucket has not succeeded yet.", **on)
        self.instance_backup_oldest_age = Gauge("clawfleet_instance_backup_oldest_latest_age_seconds", "Among "
                                                "running instances, the age of the oldest latest backup (an "
                                                "instance never backed up counts from its creation); 0 with "
                                                "none running.", **on)
        # billing
        self.stripe_events = Counter("clawfleet_stripe_events", "Stripe webhook deliveries, by event type (those "
                                     "billing acts on; other, or unverified) and outcome.", ["type", "outcome"], **on)
        # model gateway
        self.model_requests = Counter("clawfleet_model_requests", "Model calls forwarded, by provider.",
                                      ["provider"], **on)
        self.model_errors = Counter("clawfleet_model_errors", "Model calls that failed (an error status, or an "
                                    "answer cut short), by provider.", ["provider"], **on)
        self.model_tokens = Counter("clawfleet_model_tokens", "Tokens metered, by provider and kind (input, output, "
                                    "cache_read, cache_write).", ["provider", "kind"], **on)

    def read_at_scrape(self, reader: Reader) -> None:
        """`reader` sets gauges from where their truth is, before each scrape."""
        self._readers.append(reader)

    async def refresh(self) -> None:
        """Run every reader; one that fails (the database away) leaves its gauges as they were."""
        for reader in self._readers:
            try:
                await reader()
            except Exception:
                log.warning("a metrics reader failed; its gauges keep their last values", exc_info=True)
