"""The web onboarding's answers so far (table `onboarding_drafts`, one row per user), so a
person who leaves the wizard half-way finds it where they left it, from any browser.

Each answer is checked when it is given, the way the deploy will check it (InstanceService's
own checks), and stored only once it passes. The API key and the bot token are sealed like an
instance's secrets, bound to the draft's row and column, and no part of them is stored in the
clear; the page learns only that one is saved and how it ends. Deploy takes the draft (deletes
its row), hands the answers to InstanceService.create, and puts the draft back if the create is
refused: once a deploy was accepted, its draft is gone.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import SecretStr
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from db.errors import InvalidInput, LimitReached, ServiceError
from db.models import Instance, OnboardingDraft, User
from db.sealing import SealedSecretError, open_from, seal_into
from db.status import COUNTED
from db.types import utcnow
from provisioner.providers import get_provider
from provisioner.service import InstanceService, _model, _provider, _telegram_user_id

SHOWN_TAIL = 4  # characters of a saved key shown back, as the bot shows them
OTHER_DEPLOY_WAIT_S = 20  # a Deploy sent twice waits this long for the other one's outcome


@dataclass(frozen=True)
class DraftView:
    """What the wizard may show of a draft: never a secret, at most a key's last characters."""

    model_provider: str | None = None
    model: str | None = None
    key_tail: str | None = None  # None: no key saved (or it no longer opens)
    has_bot_token: bool = False
    bot_username: str | None = None
    telegram_user_id: int | None = None
    pairing_later: bool = False
    use_platform_key: bool = False  # ClawFleet's key, included in the plan, instead of one of their own

    @property
    def has_key(self) -> bool:
        return self.key_tail is not None or self.use_platform_key


@dataclass(frozen=True)
class Owner:
    """Who the new assistant answers, as step 3 settles it."""

    telegram_user_id: int | None  # None with pairing_later
    pairing_later: bool


class OnboardingDrafts:
    def __init__(self, instances: InstanceService) -> None:
        self.instances = instances
        self.sessions = instances.sessions
        self.keyring = instances.keyring

    # -- reading ----------------------------------------------------------------------------
    async def view(self, user: User) -> DraftView:
        row = await self._row(user)
        if row is None:
            return DraftView()
        key = self._open(row, "api_key_sealed")
        token = self._open(row, "telegram_bot_token_sealed")
        return DraftView(
            model_provider=row.model_provider,
            model=row.model,
            key_tail=key.get_secret_value()[-SHOWN_TAIL:] if key is not None else None,
            has_bot_token=token is not None,
            bot_username=row.telegram_bot_username if token is not None else None,
            telegram_user_id=row.telegram_user_id,
            pairing_later=row.pairing_later,
            use_platform_key=row.use_platform_key,
        )

    async def why_not(self, user: User) -> ServiceError | None:
        """Why a deploy would be refused whatever the answers (the access policy, the instance
        cap), so the wizard says so before asking anything. The create checks again."""
        try:
            await self.instances.admission.check(user)
        except ServiceError as refused:
            return refused
        allowance = await self.instances.entitlements.allowance(user)
        owned = [i for i in await self.instances.list(user) if i.status in COUNTED]
        if len(owned) >= allowance.max_instances:
            count = allowance.max_instances
            plan = f"your {allowance.plan_name} plan" if allowance.plan_name else "your plan"
            return LimitReached(f"You already have {count} assistant{'' if count == 1 else 's'}, as many as {plan} "
                                "allows. Delete one from the dashboard to make another.")
        return None

    # -- answering, step by step --------------------------------------------------------------
    async def choose_model(self, user: User, provider_id: object, model: object) -> None:
        """Step 1. Another provider than before drops the saved key: it was that provider's."""
        provider = _provider(provider_id)
        model_id = _model(provider, model)
        async with self.sessions() as session:
            row = await self._row_for_update(session, user)
            if row.model_provider != provider.id:
                seal_into(self.keyring, row, "api_key_sealed", None)
                row.use_platform_key = False
            row.model_provider, row.model = provider.id, model_id
            await session.commit()

    async def save_api_key(self, user: User, key: object) -> None:
        """Step 2: checked for the chosen provider (its shape, and live when configured)."""
        draft = await self.view(user)
        if draft.model_provider is None:
            raise InvalidInput("Choose a model provider first.", field="model_provider")
        checked = await self.instances.check_api_key(draft.model_provider, key)
        async with self.sessions() as session:
            row = await self._row_for_update(session, user)
            seal_into(self.keyring, row, "api_key_sealed", checked)
            row.use_platform_key = False
            await session.commit()

    async def use_platform_key(self, user: User) -> None:
        """Step 2 answered with ClawFleet's key, when the user may use it for the chosen provider."""
        draft = await self.view(user)
        if draft.model_provider is None:
            raise InvalidInput("Choose a model provider first.", field="model_provider")
        if not await self.instances.offers_platform_key(user, draft.model_provider):
            raise InvalidInput("ClawFleet's key is not offered to you for this provider: enter your own API key.",
                               field="api_key")
        async with self.sessions() as session:
            row = await self._row_for_update(session, user)
            seal_into(self.keyring, row, "api_key_sealed", None)
            row.use_platform_key = True
            await session.commit()

    async def save_bot_token(self, user: User, token: object) -> str:
        """Step 3, the bot: checked with getMe (not ClawFleet's own bot, not one that serves an
        instance already). Returns the bot's username."""
        identity = await self.instances.check_bot_token(token)
        async with self.sessions() as session:
            row = await self._row_for_update(session, user)
            seal_into(self.keyring, row, "telegram_bot_token_sealed", SecretStr(str(token).strip()))
            row.telegram_bot_username = identity.username
            await session.commit()
        return identity.username

    async def save_owner(self, user: User, telegram_user_id: object, *, pairing_later: bool) -> Owner:
        """Step 3, who the bot answers: a numeric Telegram id, or a pairing code approved later.
        A linked Telegram account needs neither."""
        if pairing_later:
            owner = Owner(None, True)
        else:
            try:
                checked = _telegram_user_id(telegram_user_id, default=None)
            except InvalidInput:
                raise InvalidInput("Your Telegram id is a number, like 123456789: only digits.",
                                   field="telegram_user_id") from None
            if checked is None and user.telegram_user_id is None:
                raise InvalidInput("Enter your numeric Telegram id, or choose to approve a pairing code later.",
                                   field="telegram_user_id")
            owner = Owner(checked, False)
        async with self.sessions() as session:
            row = await self._row_for_update(session, user)
            row.telegram_user_id, row.pairing_later = owner.telegram_user_id, owner.pairing_later
            await session.commit()
        return owner

    # -- deploying ----------------------------------------------------------------------------
    async def deploy(self, user: User) -> Instance:
        """Create the instance from the draft. The draft is taken first, so a Deploy sent twice
        deploys once (the other request answers with that deploy's outcome); it is put back as
        it was when the create is refused (the error names the field to fix), and gone once the
        deploy was accepted."""
        asked_at = utcnow()
        row = await self._row(user)
        if row is None:  # the wizard checked there is one: another Deploy took it just now
            return await self._deployed_meanwhile(user, asked_at - timedelta(seconds=OTHER_DEPLOY_WAIT_S))
        key = self._open(row, "api_key_sealed")
        token = self._open(row, "telegram_bot_token_sealed")
        if row.model_provider is None:
            raise InvalidInput("Choose a model provider first.", field="model_provider")
        if key is None and not row.use_platform_key:
            raise InvalidInput(f"Enter your {get_provider(row.model_provider).display_name} API key.",
                               field="api_key")
        if token is None:
            raise InvalidInput("Enter your bot's token from @BotFather.", field="telegram_bot_token")
        if not await self._take(row):
            return await self._deployed_meanwhile(user, row.created_at)
        try:
            return await self.instances.create(
                user, model_provider=row.model_provider, model=row.model,
                api_key=key.get_secret_value() if key is not None else None, use_platform_key=row.use_platform_key,
                telegram_bot_token=token.get_secret_value(),
                telegram_user_id=None if row.pairing_later else row.telegram_user_id,
            )
        except BaseException:
            await self._put_back(row)
            raise

    # -- rows ---------------------------------------------------------------------------------
    async def _row(self, user: User) -> OnboardingDraft | None:
        async with self.sessions() as session:
            return await session.scalar(select(OnboardingDraft).where(OnboardingDraft.user_id == user.id))

    async def _row_for_update(self, session, user: User) -> OnboardingDraft:
        """The user's draft in `session`, made (and committed) first when there is none yet; a
        draft another request made meanwhile is the one taken."""
        query = select(OnboardingDraft).where(OnboardingDraft.user_id == user.id)
        row = await session.scalar(query)
        if row is not None:
            return row
        session.add(OnboardingDraft(user_id=user.id, pairing_later=False))
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()
        return await session.scalar(query)

    async def _take(self, row: OnboardingDraft) -> bool:
        """Delete the draft's row; False when another request deleted it first."""
        async with self.sessions() as session:
            taken = await session.execute(delete(OnboardingDraft).where(OnboardingDraft.id == row.id))
            await session.commit()
        return taken.rowcount == 1

    async def _deployed_meanwhile(self, user: User, since: datetime) -> Instance:
        """The instance made by the request that took the draft; when that create was refused,
        the draft is back and this request deploys it again (and is told why it is refused)."""
        deadline = time.monotonic() + OTHER_DEPLOY_WAIT_S
        while time.monotonic() < deadline:
            made = [i for i in await self.instances.list(user) if i.created_at >= since]
            if made:
                return made[-1]
            if await self._row(user) is not None:
                return await self.deploy(user)
            await asyncio.sleep(0.1)
        raise InvalidInput("There is nothing to deploy yet: choose a model provider first.", field="model_provider")

    async def _put_back(self, row: OnboardingDraft) -> None:
        """The taken draft again, same id (its sealed values are bound to it)."""
        columns = {column.key: getattr(row, column.key) for column in OnboardingDraft.__table__.columns}
        async with self.sessions() as session:
            session.add(OnboardingDraft(**columns))
            try:
                await session.commit()
            except IntegrityError:
                pass  # a new draft was begun meanwhile: it is the one kept

    def _open(self, row: OnboardingDraft, column: str) -> SecretStr | None:
        """A sealed answer, or None when there is none or it no longer opens (its key was
        dropped from the ring): the wizard then asks for it again."""
        try:
            return open_from(self.keyring, row, column)
        except SealedSecretError:
            return None

