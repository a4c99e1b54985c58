"""Closing an account, the one way every front end does it (the API, the account page, the
bot): its Stripe subscriptions end first, so nobody is billed for an account that is gone, and
when Stripe cannot be told nothing is deleted; then every instance (gateway stopped, data erased),
then the account. It lives here because it is the one layer that sees accounts, instances and
billing together; with billing off it is the same without the first step."""

from __future__ import annotations

from accounts.users import Accounts
from billing.service import Billing
from db.models import User
from provisioner.service import InstanceService


async def close_account(user: User, *, accounts: Accounts, instances: InstanceService,
                        billing: Billing | None) -> None:
    """The caller has checked the person may (their password, or their Telegram identity)."""
    if billing is not None:
        await billing.cancel_for_deletion(user)  # raises before anything goes
    # an instance whose delete failed goes with the account's row all the same: the reconciler
    # stops a gateway that has no row
    await instances.delete_all(user)
    await accounts.delete(user)
