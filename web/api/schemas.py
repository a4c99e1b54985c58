"""The shape of every request body and response of the API, one pydantic model each. Handlers
validate bodies with them (web.api.bodies.json_body) and build their answers from them, and
the OpenAPI document (web.api.openapi) is generated from the same models, so the document
says what the code does.

Request models take exactly their fields (unknown ones are refused before validation, with the
list of those allowed) in strict mode: JSON has no types to coerce from. A model may name, per
field, the message a person gets when the value is missing or of the wrong type (`problems`);
otherwise one is made from the field's name and what was wrong."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints, WithJsonSchema

from db.status import Status

# A moment in ISO 8601 as datetime.isoformat() writes it (with its +00:00 offset)
Timestamp = Annotated[datetime, PlainSerializer(lambda moment: moment.isoformat(), return_type=str),
                      WithJsonSchema({"type": "string", "format": "date-time"})]
TokenName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    problems: ClassVar[dict[str, str]] = {}  # field -> what to tell a person who got it wrong


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ------------------------------------------------------------------------------------
class ErrorDetail(ResponseBody):
    code: str = Field(description="A stable, machine-readable word: invalid_input, not_found, ...")
    message: str = Field(description="What went wrong, for a person to read.")
    field: str | None = Field(None, description="The input to fix: a body field, a query parameter, a "
                                                "header, or `body` for the body as a whole.")
    allowed: list[str] | None = Field(None, description="For an unknown field: the fields the route takes.")


class Error(ResponseBody):
    error: ErrorDetail


# -- health ------------------------------------------------------------------------------------
class PlatformHealth(ResponseBody):
    status: Literal["ok", "degraded"]
    version: str = Field(description="ClawFleet's version.")
    database: Literal["ok", "unreachable"]



class EdgeName(ResponseBody):
    domain: str = Field(description="The name asked about, lower case.")
    served: bool = Field(description="Always true: names the platform does not serve answer 404.")


# -- accounts ----------------------------------------------------------------------------------
class Credentials(RequestBody):
    email: str = Field(description="The account's email address.", examples=["ada@example.com"])
    password: str = Field(description="10 characters at least, 1024 at most.")

    problems = {"email": "Send an email and a password.", "password": "Send an email and a password."}


class RegisteredUser(ResponseBody):
    id: uuid.UUID
    email: str


class Registered(ResponseBody):
    user: RegisteredUser
    token: str = Field(description="A session token: send it as `Authorization: Bearer <token>`. Shown once.")


class LoggedIn(ResponseBody):
    token: str = Field(description="A session token (30 days). Shown once.")


class PasswordResetRequest(RequestBody):
    email: str = Field(description="The account's email address.", examples=["ada@example.com"])

    problems = {"email": "Enter the email address of your account, like name@example.com."}


class PasswordReset(RequestBody):
    token: str = Field(description="The token of the reset link.")
    password: str = Field(description="The new password: 10 characters at least, 1024 at most.")

    problems = {"token": "Open the link from your reset message again: its token is missing.",
                "password": "Choose a password of at least 10 characters."}


class EmailProof(RequestBody):
    token: str = Field(description="The token of the email's proof link.")

    problems = {"token": "Open the link from your email again: its token is missing."}


class Accepted(ResponseBody):
    message: str = Field(description="What happens next, for a person to read.")


class EmailProofSent(ResponseBody):
    sent_by: Literal["email", "telegram"] = Field(description="How the link went out.")


class TelegramLinkCode(ResponseBody):
    code: str = Field(description="Send it to ClawFleet's bot (`/link CODE`) within 10 minutes. Shown once.")
    deep_link: str | None = Field(description="The t.me link that sends the code; null while the bot is off.")
    expires_at: Timestamp


class InviteRedemption(RequestBody):
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = Field(
        description="An invite code from `clawfleet invites create`.", examples=["inv-..."])

    problems = {"code": 'Send the invite code as {"code": "inv-..."}.'}


class Profile(ResponseBody):
    id: uuid.UUID
    email: str | None
    email_verified: bool = Field(description="Whether the owner proved the email is theirs.")
    telegram_user_id: int | None
    telegram_username: str | None
    created_at: Timestamp
    is_admin: bool


class ProfileChange(RequestBody):
    email: str | None = Field(None, description="A new email; it has to be verified again.")
    password: str | None = Field(None, description="A new password; every other session is logged out.")
    current_password: str | None = Field(None, description="Needed for either change when the account has a "
                                                           "password.")


class AccountDeletion(RequestBody):
    password: str | None = Field(None, description="The account's password (needed when it has one).")


# -- API tokens --------------------------------------------------------------------------------
class TokenRequest(RequestBody):
    name: TokenName = Field(description="What the token is for: 1 to 100 characters.", examples=["ci deploys"])
    can_manage_tokens: bool = Field(False, description="Whether the token may create and revoke tokens itself.")

    problems = {"name": "Name the token (1 to 100 characters), e.g. {\"name\": \"ci deploys\"}."}


class TokenInfo(ResponseBody):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it by.")
    created_at: Timestamp
    last_used_at: Timestamp | None
    can_manage_tokens: bool


class TokenList(ResponseBody):
    tokens: list[TokenInfo]


class NewToken(TokenInfo):
    token: str = Field(description="The token itself: shown this once, never again.")


# -- instances ---------------------------------------------------------------------------------
TELEGRAM_USER_ID = "telegram_user_id must be your numeric Telegram user id (e.g. 123456789)."
TelegramUserId = Annotated[int, Field(ge=1)] | Annotated[str, StringConstraints(pattern=r"^[0-9]*$")] | None


class InstanceRequest(RequestBody):
    model_provider: str = Field(description="anthropic, openai, moonshot or kimi-coding.")
    model: str | None = Field(None, description="One of the provider's models; its default when left out.")
    api_key: str | None = Field(None, description="The provider's API key. Never shown again. Needed unless "
                                                  "use_platform_key.")
    use_platform_key: bool = Field(False, description="Run on ClawFleet's own key for the provider, when the "
                                                      "platform offers one and your plan includes usage (no "
                                                      "api_key then); usage counts against the plan's allowance.")
    telegram_bot_token: str | None = Field(None, description="The token of your own bot, from @BotFather.")
    telegram_user_id: TelegramUserId = Field(None, description="Your Telegram user id: the bot answers you "
                                                               "at once.")
    plan: str | None = Field(None, description="With billing on: the plan to subscribe to when a payment is "
                                               "needed (GET /api/billing/plans; the default when left out).")

    problems = {"model_provider": "Choose a model provider (anthropic, openai, moonshot or kimi-coding).",
                "plan": "plan must be the id of one of the plans (GET /api/billing/plans).",
                "model": "model must be the name of one of the provider's models.",
                "api_key": "Send your model provider's API key as text.",
                "use_platform_key": "use_platform_key must be true or false.",
                "telegram_bot_token": "Send your bot's token (from @BotFather) as text.",
                "telegram_user_id": TELEGRAM_USER_ID}


class InstanceChangeRequest(RequestBody):
    """Any of the create fields; a field left out keeps its value, `telegram_bot_token: null`
    removes the bot."""

    model_provider: str | None = Field(None, description="anthropic, openai, moonshot or kimi-coding.")
    model: str | None = Field(None, description="One of the provider's models.")
    api_key: str | None = Field(None, description="The provider's API key (needed with a new provider).")
    telegram_bot_token: str | None = Field(None, description="A new bot token; null or \"\" removes the bot.")
    telegram_user_id: TelegramUserId = Field(None, description="Who the bot answers without pairing.")

    problems = InstanceRequest.problems


class InstanceInfo(ResponseBody):
    id: uuid.UUID
    status: Status
    status_reason: str | None = Field(description="Why it is in this status, for its owner.")
    action: str | None = Field(description="The action in progress (start, stop, restart, delete, ...), or null.")
    subdomain: str
    url: str
    model_provider: str
    model: str
    key: str = Field(description="Whose provider key its model calls go out with: own (yours) or platform "
                                 "(ClawFleet's, included in your plan).")
    telegram_bot_username: str | None
    telegram_user_id: int | None
    runtime: str
    running_since: Timestamp | None
    restart_count: int
    memory_restarts: int = Field(description="Restarts at a quiet moment because its gateway held too much memory.")
    failure_streak: int
    next_restart_at: Timestamp | None
    created_at: Timestamp
    updated_at: Timestamp
    progress_url: str


class InstanceCreated(InstanceInfo):
    """The create's answer: the instance, and when it waits for payment, where to pay."""

    checkout_url: str | None = Field(description="Stripe Checkout, when the instance waits for payment "
                                                 "(status awaiting_payment): it deploys once paid. Null otherwise, "
                                                 "or when the page could not be made (see checkout_error).")
    checkout_error: ErrorDetail | None = Field(description="Why no checkout_url could be made (payments not "
                                                           "answering): the instance is kept, waiting; pay later "
                                                           "with POST /api/billing/checkout. Null otherwise.")


class PairingApproval(RequestBody):
    code: str = Field(description="The 8-character pairing code the instance's bot sent someone who messaged it.",
                      examples=["HX7K2MQP"])

    problems = {"code": "A pairing code is the 8 letters and digits your bot sent (no 0, O, 1 or I), e.g. HX7K2MQP."}


class InstanceBackupInfo(ResponseBody):
    id: uuid.UUID
    instance_id: uuid.UUID
    created_at: Timestamp
    kind: Literal["manual", "scheduled", "pre-upgrade", "pre-restore"]
    size: int = Field(description="Bytes of the archive a download gives (openclaw backup's .tar.gz).")
    sha256: str = Field(description="SHA-256 of that archive, hex.")
    openclaw_version: str
    stored: list[Literal["local", "s3"]] = Field(description="Where its encrypted copies are.")
    download_url: str


class InstanceBackupList(ResponseBody):
    backups: list[InstanceBackupInfo]


class RestoreRequest(RequestBody):
    target: Literal["same", "new"] = Field("same", description='"same": into this instance (its current state is '
                                           'backed up first); "new": into a new instance of yours, which gets '
                                           "credentials of its own and no Telegram bot (set one in its settings).")

    problems = {"target": 'target must be "same" or "new".'}


class InstanceList(ResponseBody):
    instances: list[InstanceInfo]


class InstanceChanged(ResponseBody):
    instance: InstanceInfo
    changed: list[str] = Field(description="The fields whose value changed.")
    restart_required: bool = Field(description="The changes take effect at the next restart.")


class MemoryUse(ResponseBody):
    limit_mb: int | None
    used_mb: int | None


class InstanceHealth(ResponseBody):
    status: Status
    live: bool
    ready: bool
    checked_at: str = Field(json_schema_extra={"format": "date-time"})
    memory: MemoryUse


class ProgressEventData(ResponseBody):
    """The data of each `progress` event of the stream (JSON)."""

    seq: int
    step: str
    message: str
    elapsed_ms: int
    done: bool
    failed: bool
    reason: str | None = None


# -- model usage -------------------------------------------------------------------------------
Dollars = Annotated[float, Field(description="US dollars, to the micro-dollar (a number with at most 6 decimals).")]


class UsageNumbers(ResponseBody):
    """Model calls through the platform's model gateway, summed."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    requests: int = Field(description="Calls passed on to the provider.")
    errors: int = Field(description="Calls the provider answered with an error, or that were cut off.")
    cost_usd: Dollars


class ModelUsageNumbers(UsageNumbers):
    model: str = Field(description="The model as the provider named it in its answer.")


class UsageDay(UsageNumbers):
    day: date = Field(description="A UTC day.")
    models: list[ModelUsageNumbers] = Field(description="The day's usage per model, the costliest first; empty "
                                                        "on a day without calls.")


class SpendStanding(ResponseBody):
    """This calendar month (UTC) across all of the user's instances, against their cap."""

    spent_usd: Dollars
    cap_usd: Dollars | None = Field(description="The cap in force: your own within your plan's ceiling; null: "
                                                "no cap.")
    own_cap_usd: Dollars | None = Field(description="The cap you set; null: none of your own.")
    ceiling_usd: Dollars | None = Field(description="Your plan's highest cap; null: the plan has none.")
    near: bool = Field(description="At 80% of the cap or more.")
    reached: bool = Field(description="At the cap: model calls are refused until the month ends or the cap is "
                                      "raised.")
    resets_on: date = Field(description="The first day of next month (UTC), when the count starts again.")
    included_usd: Dollars | None = Field(None, description="Model usage on ClawFleet's key your plan includes "
                                                           "each month; null: none.")
    included_spent_usd: Dollars = Field(0, description="Of spent_usd, what went on ClawFleet's key.")
    overage_billed: bool = Field(False, description="Past the included usage, calls on ClawFleet's key go on and "
                                                    "are billed (up to the cap); false: they stop.")
    overage_usd: Dollars = Field(0, description="What calls on ClawFleet's key cost this month beyond the included "
                                                "usage; billed when overage_billed.")


class InstanceUsage(ResponseBody):
    instance_id: uuid.UUID
    first: date = Field(serialization_alias="from")
    last: date = Field(serialization_alias="to")
    days: list[UsageDay] = Field(description="Every day from `from` to `to`, both included and in order; days "
                                             "without calls are there too, with zeros (one bar each in a chart).")
    totals: UsageNumbers = Field(description="The days summed.")
    month: SpendStanding


class InstanceMonthUsage(ResponseBody):
    instance_id: uuid.UUID
    today: UsageNumbers
    month: UsageNumbers


class AccountUsage(ResponseBody):
    month_start: date = Field(description="The first day of this month (UTC).")
    today: UsageNumbers = Field(description="Today (UTC) across your instances.")
    month: UsageNumbers = Field(description="This month so far across your instances.")
    instances: list[InstanceMonthUsage] = Field(description="Each instance that made calls this month, the "
                                                            "costliest first (deleted ones too: what they spent "
                                                            "counts toward the cap).")
    cap: SpendStanding


class SpendCapChange(RequestBody):
    spend_cap_usd: float | None = Field(description="The monthly cap in US dollars, more than 0; null removes "
                                                    "your own cap (your plan's ceiling, if any, still applies).",
                                        examples=[20])

    problems = {"spend_cap_usd": 'Send the monthly cap in US dollars as a number, like {"spend_cap_usd": 20}, '
                                 'or null for no cap of your own.'}


# -- billing -----------------------------------------------------------------------------------
class PlanInfo(ResponseBody):
    id: str
    name: str
    price_label: str = Field(description="What people read next to the name (\"$9 / month\"); Stripe bills it.")
    instances: int = Field(description="How many assistants a subscriber may have.")
    memory_mb: int = Field(description="Memory each assistant's gateway gets.")
    cpus: float = Field(description="CPUs each assistant's gateway gets.")
    trial_days: int = Field(description="Free days before the first charge (0: none).")
    default: bool = Field(description="The plan offered first, and used when none is named.")


class PlanList(ResponseBody):
    plans: list[PlanInfo]
    default: str = Field(description="The id of the default plan.")


class SubscriptionInfo(ResponseBody):
    plan: PlanInfo | None = Field(description="The subscription's plan (the one that decides); null: never "
                                              "subscribed.")
    status: str | None = Field(description="Stripe's word for it (active, trialing, past_due, unpaid, canceled, "
                                           "...); null: never subscribed.")
    entitled: bool = Field(description="Whether it pays for running assistants now.")
    current_period_end: Timestamp | None = Field(description="When it renews, or ends when cancel_at_period_end.")
    cancel_at_period_end: bool
    running: int = Field(description="Assistants taking a place of the plan's.")
    customer: bool = Field(description="Whether a Stripe customer exists (so POST /api/billing/portal works).")
    payment_failed: bool = Field(description="A payment failed (past_due or unpaid): update the card in the "
                                             "portal.")
    over_limit: bool = Field(description="More run than the plan allows (after a downgrade): stop some; nothing "
                                         "is stopped for you.")


class CheckoutRequest(RequestBody):
    plan: str | None = Field(None, description="The plan's id; the default plan when left out.",
                             examples=["personal"])

    problems = {"plan": "plan must be the id of one of the plans (GET /api/billing/plans)."}


class PlanChangeRequest(RequestBody):
    plan: str = Field(description="The id of the plan to move to.", examples=["team"])

    problems = {"plan": "Send the plan to move to, e.g. {\"plan\": \"team\"} (GET /api/billing/plans)."}


class BillingLink(ResponseBody):
    url: str = Field(description="Stripe's page: send the person there.")


class WebhookReceived(ResponseBody):
    received: bool
    outcome: Literal["processed", "duplicate", "ignored"] = Field(
        description="processed: acted on; duplicate: seen before; ignored: not about anyone here.")


# -- Telegram ----------------------------------------------------------------------------------
class TelegramUpdate(BaseModel):
    """One of Telegram's updates (its shape is Telegram's): a numeric id, every other field an object."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": {"type": "object"}})

    update_id: int


# -- admin -------------------------------------------------------------------------------------
class AdminUser(ResponseBody):
    id: uuid.UUID
    email: str | None
    telegram_user_id: int | None
    telegram_username: str | None
    is_admin: bool
    instances: int = Field(description="How many instances the account has.")
    plan: str | None = Field(description="The plan of its latest subscription (billing on); null: none.")
    subscription: str | None = Field(description="Stripe's status of that subscription: active, past_due, canceled…")
    created_at: Timestamp


class AdminUserList(ResponseBody):
    users: list[AdminUser]
    next: str | None = Field(description="Pass as ?after= for the next page; null on the last page.")


class AdminInstance(ResponseBody):
    id: uuid.UUID
    user_id: uuid.UUID
    owner_email: str | None
    owner_telegram_id: int | None
    subdomain: str
    status: Status
    status_reason: str | None
    suspended_by_operator: bool = Field(description="An operator's suspension, which billing never lifts.")
    model_provider: str
    model: str
    memory_mb: int | None = Field(description="The memory its gateway was given at its last start.")
    restart_count: int
    memory_restarts: int
    created_at: Timestamp


class AdminInstanceList(ResponseBody):
    instances: list[AdminInstance]
    next: str | None = Field(description="Pass as ?after= for the next page; null on the last page.")


class SuspensionRequest(RequestBody):
    reason: str = Field("", description="Told to the owner in chat and kept in the audit log; 500 characters at most.")


class SuspensionOutcome(ResponseBody):
    instance_id: uuid.UUID
    status: str = Field(description="Its status now, or the one it is on its way to.")
    message: str


class SuspensionOutcomes(ResponseBody):
    outcomes: list[SuspensionOutcome]


class AuditEntry(ResponseBody):
    id: uuid.UUID
    at: Timestamp
    actor: str
    action: str
    user_id: uuid.UUID | None
    user_email: str | None
    instance_id: uuid.UUID | None
    details: dict


class AuditPage(ResponseBody):
    entries: list[AuditEntry]
    next: str | None = Field(description="Pass as ?after= for the next page; null on the last page.")


class BroadcastRequest(RequestBody):
    text: str = Field(description="What every bot user is sent (plain text).")


class BroadcastProgress(ResponseBody):
    id: uuid.UUID
    text: str
    recipients: int
    delivered: int
    failed: int
    waiting: int
    done: bool
    created_at: Timestamp
