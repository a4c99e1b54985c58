"""The schema. Secrets live only in columns marked sealed (see db.sealing); nothing else holds one."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship

from db.status import Status
from db.types import JSONDocument, UTCDateTime, utcnow

# Stable constraint names, so migrations can alter them (SQLite batch mode needs names).
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SEALED = {"sealed": True}  # column info marker: the value is a db.sealing ciphertext
# Whose provider key an instance's model calls go out with: its owner's, or the platform's own
# (CLAWFLEET_PLATFORM_KEYS, for plans that include usage).
KEY_OWN, KEY_PLATFORM = "own", "platform"



def _construct(self: Base, **kwargs: Any) -> None:
    """Give every row its UUID at construction: sealed secrets bind to the id before insert."""
    cls = type(self)
    if "id" in cls.__mapper__.columns and kwargs.get("id") is None:
        kwargs["id"] = uuid.uuid4()
    for key, value in kwargs.items():
        if not hasattr(cls, key):
            raise TypeError(f"{key!r} is an invalid keyword argument for {cls.__name__}")
        setattr(self, key, value)


class Base(DeclarativeBase):
    registry = registry(constructor=_construct)
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __repr__(self) -> str:
        # ids only: a repr must never carry a secret or personal data into a log line
        return f"<{type(self).__name__} {getattr(self, 'id', '?')}>"


def _id() -> Mapped[uuid.UUID]:
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


class User(Base):
    """A person. Logs in with email and password, with a Telegram identity, or both."""

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "(email IS NOT NULL AND password_hash IS NOT NULL) OR telegram_user_id IS NOT NULL",
            name="login_method",
        ),
        Index("ix_users_created_at", "created_at"),  # the admin section's newest-first pages
    )

    id: Mapped[uuid.UUID] = _id()
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    telegram_username: Mapped[str | None] = mapped_column(String(64))
    # When the owner proved the email is theirs. Until then it does not count for the
    # allowlist: anyone may register any address.
    email_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # The monthly model spending cap the user set, in micro-dollars (None: none of their own);
    # the month (YYYY-MM) they were last told they neared it, reached it, and spent their plan's
    # included usage, so each is said once.
    spend_cap_micro_usd: Mapped[int | None] = mapped_column(BigInteger)
    spend_warned_month: Mapped[str | None] = mapped_column(String(7))
    spend_stopped_month: Mapped[str | None] = mapped_column(String(7))
    included_stopped_month: Mapped[str | None] = mapped_column(String(7))  # the plan's included usage spent
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()

    # passive_deletes: the database's ON DELETE CASCADE removes them, no loading first
    instances: Mapped[list[Instance]] = relationship(
        back_populates="user", passive_deletes=True, lazy="raise"
    )


class Instance(Base):
    """One user's OpenClaw gateway. `status` is the only state machine (db.status)."""

    __tablename__ = "instances"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in Status) + ")",
            name="status_known",
        ),
        Index("ix_instances_user_id", "user_id"),
        Index("ix_instances_status", "status"),
        Index("ix_instances_created_at", "created_at"),  # the admin section's newest-first pages
    )

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(32), default=Status.PROVISIONING.value, nullable=False)
    status_reason: Mapped[str | None] = mapped_column(Text)  # readable by the owner
    subdomain: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)

    runtime: Mapped[str] = mapped_column(String(32), nullable=False)
    runtime_state: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict, nullable=False)
    port: Mapped[int | None] = mapped_column(Integer)
    endpoint_url: Mapped[str | None] = mapped_column(String(255))

    model_provider: Mapped[str] = mapped_column(String(64), nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    # The owner's provider key; None when the instance runs on the platform's key (key_source).
    api_key_sealed: Mapped[str | None] = mapped_column(Text, info=SEALED)
    key_source: Mapped[str] = mapped_column(String(16), default=KEY_OWN, server_default=KEY_OWN, nullable=False)
    gateway_secret_sealed: Mapped[str | None] = mapped_column(Text, info=SEALED)
    telegram_bot_token_sealed: Mapped[str | None] = mapped_column(Text, info=SEALED)
    # The instance's credential for the platform's model gateway (model_gateway/), which holds
    # the provider key instead: sealed so every start can write it into the instance again,
    # and hashed for the gateway to check without opening anything. Worthless anywhere else.
    model_credential_sealed: Mapped[str | None] = mapped_column(Text, info=SEALED)
    model_credential_hash: Mapped[str | None] = mapped_column(String(64))
    # From getMe. Unique: tokens are sealed (not comparable), but one bot serves one instance.
    telegram_bot_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    telegram_bot_username: Mapped[str | None] = mapped_column(String(64))
    # Who the instance's bot answers without pairing (dmPolicy allowlist).
    telegram_allow_from: Mapped[int | None] = mapped_column(BigInteger)

    # Crash restarts (the reconciler): failures in a row, when it may try again, restarts so far.
    failure_streak: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    restart_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    memory_restarts: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)  # memory watch
    # Since when it has been ready (uptime; the streak resets after a while healthy) and since
    # when a live gateway has answered "not ready" (the owner is told once it lasts).
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_ready_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # One action at a time: taken with a conditional UPDATE (db.leases), naming the action
    # (db.status.Action); another process asks its holder to stop by writing cancel_requested_at.
    lease_holder: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    action: Mapped[str | None] = mapped_column(String(32))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    # What its gateway is given, from the owner's entitlements at its last start; the memory
    # budget counts these same figures.
    memory_mb: Mapped[int | None] = mapped_column(Integer)
    cpus: Mapped[float | None] = mapped_column(Float)

    # An operator's suspension (admin.suspensions), apart from billing's: while set the
    # instance stays `suspended` whatever billing says, and the retention worker leaves it be;
    # `admin_suspended_from` is the status it had, which a resume brings back.
    admin_suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    admin_suspended_from: Mapped[str | None] = mapped_column(String(32))

    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    last_active_at: Mapped[datetime] = _created()

    user: Mapped[User] = relationship(back_populates="instances", lazy="raise")

    def __repr__(self) -> str:
        return f"<Instance {self.id} {self.status}>"


class ProgressRecord(Base):
    """One progress event of an instance's latest action (provisioner.progress), stored as it is
    emitted so that any platform process can serve the stream. Seq 0 opens the action (its owner,
    its number) and is never sent. No foreign keys: a delete's events outlive the instance row
    and stay readable to `owner_id`; a new action's rows replace the older action's."""

    __tablename__ = "progress_events"
    __table_args__ = (Index("ix_progress_events_instance_id", "instance_id", "action_seq", "seq", unique=True),)

    id: Mapped[uuid.UUID] = _id()
    instance_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action_seq: Mapped[int] = mapped_column(Integer, nullable=False)  # grows with each action on the instance
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    step: Mapped[str] = mapped_column(String(64), nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    elapsed_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    done: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    failed: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class Subscription(Base):
    """A Stripe subscription of a user's, as last read from Stripe (billing.subscriptions): one
    row per Stripe subscription, so a new one after a cancelled one is a row of its own. What a
    user may run follows from their rows (billing.entitlements); nothing else decides it."""

    __tablename__ = "subscriptions"
    __table_args__ = (Index("ix_subscriptions_user_id", "user_id"),)

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    status: Mapped[str] = mapped_column(String(32), nullable=False)  # Stripe's: active, past_due, canceled…
    plan: Mapped[str] = mapped_column(String(32), nullable=False)  # the plan id of the plans file
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    current_period_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when Stripe ended it
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # last read from Stripe
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class OutboxEffect(Base):
    """Something to do because billing changed (deploy what waited for payment, suspend, tell the
    owner), written in the same transaction as the change and carried out afterwards by one
    worker (billing.outbox): a change is never half-acted on, and an effect never runs twice for
    one cause (`key` is unique). Failed attempts are retried with backoff; `last_error` shows why."""

    __tablename__ = "outbox_effects"
    __table_args__ = (Index("ix_outbox_effects_pending", "done_at", "next_attempt_at"),)

    id: Mapped[uuid.UUID] = _id()
    key: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)  # the cause, e.g. event id + kind
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)
    next_attempt_at: Mapped[datetime] = _created()
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    given_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()


class ModelUsage(Base):
    """Model calls through the platform's model gateway, summed per instance, day (UTC) and
    model. Kept when the instance goes (a spending cap is the user's, across instances); gone
    with the user."""

    __tablename__ = "model_usage"
    __table_args__ = (
        UniqueConstraint("instance_id", "day", "model", "key_source", name="uq_model_usage_instance_day_model"),
        Index("ix_model_usage_user_id_day", "user_id", "day"),
    )

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    instance_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    provider: Mapped[str] = mapped_column(String(64), nullable=False)
    model: Mapped[str] = mapped_column(String(128), nullable=False)
    key_source: Mapped[str] = mapped_column(String(16), nullable=False)  # whose key paid: KEY_OWN, KEY_PLATFORM
    input_tokens: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    output_tokens: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    cache_read_tokens: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    cache_write_tokens: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    requests: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    errors: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    cost_micro_usd: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


class ResourceSample(Base):
    """A running gateway's memory and CPU at one moment (provisioner.resources), kept a day for
    its owner's chart; gone with the instance."""

    __tablename__ = "resource_samples"
    __table_args__ = (
        Index("ix_resource_samples_instance_id_taken_at", "instance_id", "taken_at"),
        Index("ix_resource_samples_taken_at", "taken_at"),  # pruning by age
    )

    id: Mapped[uuid.UUID] = _id()
    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), nullable=False)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cpu_percent: Mapped[float | None] = mapped_column(Float)  # of one core, since the sample before; None: first


class LatestResourceSample(Base):
    """Each running gateway's latest sample, one row per instance, replaced every round: what
    is read often (the metrics, memory-aware restarts) is one primary-key row, and the CPU time
    it keeps is what the next sample's CPU load is measured from."""

    __tablename__ = "latest_resource_samples"

    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True)
    taken_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    memory_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    cpu_seconds: Mapped[float] = mapped_column(Float, nullable=False)  # the runtime's count, since the gateway started
    cpu_percent: Mapped[float | None] = mapped_column(Float)


class OverageReport(Base):
    """What was reported to Stripe's meter of a user's model usage past their plan's included amount
    in one calendar month (UTC), in whole cents, cumulative (billing.overage). Written in the
    transaction that queues the meter event for the difference, so each cent is sent once."""

    __tablename__ = "overage_reports"
    __table_args__ = (UniqueConstraint("user_id", "month", name="uq_overage_reports_user_id_month"),)

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    month: Mapped[str] = mapped_column(String(7), nullable=False)  # "2026-12"
    reported_cents: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    updated_at: Mapped[datetime] = _updated()


# Why an instance backup was made (InstanceBackup.kind).
BACKUP_KINDS = ("manual", "scheduled", "pre-upgrade", "pre-restore")


class InstanceBackup(Base):
    """One encrypted archive of an instance's OpenClaw state (provisioner/instance_backups/).
    The archive is encrypted with a data key of its own, sealed here; `size` and `sha256` are the
    decrypted archive's (what a download gives). Where it is: `local_path` under DATA_DIR,
    `s3_key` in the bucket once uploaded, either or both; `s3_error` says why it is not in the
    bucket yet (an upload not finished, or the bucket's refusal), so the schedule tries again."""

    __tablename__ = "instance_backups"
    __table_args__ = (
        CheckConstraint("kind IN (" + ", ".join(f"'{k}'" for k in BACKUP_KINDS) + ")", name="kind_known"),
        Index("ix_instance_backups_instance_id_created_at", "instance_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = _id()
    instance_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    size: Mapped[int] = mapped_column(BigInteger, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    openclaw_version: Mapped[str] = mapped_column(String(32), nullable=False)
    data_key_sealed: Mapped[str] = mapped_column(Text, info=SEALED, nullable=False)
    local_path: Mapped[str | None] = mapped_column(String(512))
    s3_key: Mapped[str | None] = mapped_column(String(512))
    s3_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = _created()


class AuditLog(Base):
    """Who did what. Outlives the user and the instance it speaks of (no cascade)."""

    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_user_id_created_at", "user_id", "created_at"),
        Index("ix_audit_logs_instance_id", "instance_id"),
        Index("ix_audit_logs_created_at", "created_at"),  # the admin section's newest-first pages
    )

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    instance_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # user, billing, retention…, or the acting operator: admin:<email> (the dashboard), cli:<login> (the command line)
    actor: Mapped[str] = mapped_column(String(330), nullable=False)
    action: Mapped[str] = mapped_column(String(100), nullable=False)
    details: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict, nullable=False)
    created_at: Mapped[datetime] = _created()


class AccessRefusal(Base):
    """Someone the access policy kept out of the bot, for the operator to see: one row per
    Telegram id (no account is made for them), written at most once a minute per id, and
    only the most recent few hundred kept (accounts.refusals)."""

    __tablename__ = "access_refusals"
    __table_args__ = (Index("ix_access_refusals_last_seen_at", "last_seen_at"),)

    id: Mapped[uuid.UUID] = _id()
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True, nullable=False)
    telegram_username: Mapped[str | None] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer, default=1, nullable=False)  # refusals, at least
    first_seen_at: Mapped[datetime] = _created()
    last_seen_at: Mapped[datetime] = _created()


class LoginLink(Base):
    """A one-time link or code handed to a user, for one purpose (accounts/login_links.py): a
    dashboard login, proving an email, resetting a password, linking a Telegram account,
    opening an instance's own host; or handed to whoever opens it signed in (`user_id` None:
    the setup link that makes the first admin). Only the token's hash is stored."""

    __tablename__ = "login_links"

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    purpose: Mapped[str] = mapped_column(String(32), default="login", server_default="login", nullable=False)
    email: Mapped[str | None] = mapped_column(String(320))  # verify_email: the address it proves
    # open_instance: the instance it opens, and the dashboard session the instance host's ends with
    instance_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()


class Invite(Base):
    """A one-time invite code for CLAWFLEET_ACCESS=invite; only the code's hash is stored."""

    __tablename__ = "invites"

    id: Mapped[uuid.UUID] = _id()
    code_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = _created()


class ApiToken(Base):
    """Bearer tokens: API tokens a user makes, and dashboard/login sessions. Stored hashed."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    kind: Mapped[str] = mapped_column(String(16), default="api", nullable=False)  # api | session
    name: Mapped[str] = mapped_column(String(100), default="", nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    prefix: Mapped[str] = mapped_column(String(16), nullable=False)  # shown in lists, not secret
    created_at: Mapped[datetime] = _created()
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An API token's right to create and revoke API tokens itself (sessions always may)
    can_manage_tokens: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)


class WebhookEvent(Base):
    """Events already handled: providers deliver at least once, so each is acted on once (the
    insert of its id is part of the transaction that acts on it: billing.webhooks)."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("source", "event_id", name="uq_webhook_events_source_event"),)

    id: Mapped[uuid.UUID] = _id()
    source: Mapped[str] = mapped_column(String(32), nullable=False)  # stripe, telegram…
    event_id: Mapped[str] = mapped_column(String(255), nullable=False)
    event_type: Mapped[str] = mapped_column(String(100), nullable=False)
    received_at: Mapped[datetime] = _created()
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BotState(Base):
    """The bot's persistence (conversation states, user and chat data), one JSON row per key."""

    __tablename__ = "bot_state"
    __table_args__ = (UniqueConstraint("namespace", "key", name="uq_bot_state_namespace_key"),)

    id: Mapped[uuid.UUID] = _id()
    namespace: Mapped[str] = mapped_column(String(64), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    data: Mapped[Any] = mapped_column(JSONDocument, nullable=False)
    updated_at: Mapped[datetime] = _updated()


class Lease(Base):
    """A named singleton lease (Telegram polling, the reconciler, the Stripe sync)."""

    __tablename__ = "leases"

    id: Mapped[uuid.UUID] = _id()
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    holder: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OnboardingDraft(Base):
    """A web onboarding left half-done, one per user, so the wizard resumes where it was left.
    The key and the bot token are sealed like an instance's; the row goes once the deploy of
    what it holds was accepted (provisioner.drafts)."""

    __tablename__ = "onboarding_drafts"

    id: Mapped[uuid.UUID] = _id()
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    model_provider: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    api_key_sealed: Mapped[str | None] = mapped_column(Text, info=SEALED)
    telegram_bot_token_sealed: Mapped[str | None] = mapped_column(Text, info=SEALED)
    telegram_bot_username: Mapped[str | None] = mapped_column(String(64))  # from getMe
    # Who the instance's bot answers: this Telegram id, or nobody until a pairing code is
    # approved (pairing_later); neither while the step is unanswered.
    telegram_user_id: Mapped[int | None] = mapped_column(BigInteger)
    pairing_later: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    use_platform_key: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false(), nullable=False)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Broadcast(Base):
    """A message an admin sent to every bot user (admin.broadcasts): its recipients are fixed when
    it is queued, one BroadcastDelivery each, and one sender of all platform processes delivers
    them (a named lease)."""

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_created_at", "created_at"),)

    id: Mapped[uuid.UUID] = _id()
    text: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str] = mapped_column(String(320), nullable=False)  # who queued it, as the audit log names them
    recipients: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    created_at: Mapped[datetime] = _created()
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # every delivery delivered or failed


class BroadcastDelivery(Base):
    """One recipient of a broadcast: `pending`, then `sending` (claimed: never sent again, even
    after a crash), then `delivered` or `failed` with the reason."""

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "user_id", name="uq_broadcast_deliveries_broadcast_id_user_id"),
        Index("ix_broadcast_deliveries_state", "broadcast_id", "state"),
    )

    id: Mapped[uuid.UUID] = _id()
    broadcast_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("broadcasts.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    state: Mapped[str] = mapped_column(String(16), default="pending", nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = _updated()
