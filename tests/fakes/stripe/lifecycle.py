"""What happens to a subscription after Checkout, done in localstripe and told by webhook:
cancellation, a failed renewal payment, a paid renewal, a status set by the test.

A failed payment is real as far as localstripe goes: the customer's default card becomes
`pm_card_chargeCustomerFail` (card 4000000000000341: attaches, then every charge declines), a
renewal invoice is made and paid, and its charge fails (the invoice stays `open`, with
`attempted` and a failed payment intent). localstripe then leaves the subscription `active`
and sends nothing (its `/pay` route ignores a declined renewal), so the fake lays `past_due`
over the subscription's status and delivers `invoice.payment_failed` and
`customer.subscription.updated` itself. `renew` pays a renewal invoice with the working test
Visa and clears that overlay.
"""

from __future__ import annotations

from tests.fakes.stripe.checkout import Notify
from tests.fakes.stripe.protocol import JsonDict
from tests.fakes.stripe.upstream import Upstream

DECLINING_CARD = "pm_card_chargeCustomerFail"
WORKING_CARD = "pm_card_visa"


class Lifecycle:
    def __init__(self, upstream: Upstream, notify: Notify) -> None:
        self.upstream = upstream
        self.notify = notify

    async def subscription(self, sub_id: str) -> JsonDict:
        return await self.upstream.call("GET", f"/v1/subscriptions/{sub_id}")

    async def cancel(self, sub_id: str) -> JsonDict:
        """Ends it now; delivers `customer.subscription.deleted`."""
        self.upstream.subscription_overlays.pop(sub_id, None)
        canceled = await self.upstream.call("DELETE", f"/v1/subscriptions/{sub_id}")
        await self.notify("customer.subscription.deleted", canceled)
        return canceled

    async def cancel_at_period_end(self, sub_id: str) -> JsonDict:
        updated = await self.upstream.call("POST", f"/v1/subscriptions/{sub_id}", {"cancel_at_period_end": True})
        await self.notify("customer.subscription.updated", updated, previous_attributes={"cancel_at_period_end": False})
        return updated

    async def set_status(self, sub_id: str, status: str, **fields: object) -> JsonDict:
        """Lays `status` (and `fields`) over the subscription; delivers `.updated`."""
        before = await self.subscription(sub_id)
        self.upstream.subscription_overlays[sub_id] = {"status": status, **fields}
        after = await self.subscription(sub_id)
        changed = {key: before.get(key) for key in ("status", *fields) if before.get(key) != after.get(key)}
        await self.notify("customer.subscription.updated", after, previous_attributes=changed)
        return after

    async def fail_payment(self, sub_id: str) -> JsonDict:
        """A renewal whose card is declined; the failed invoice (subscription now `past_due`)."""
        sub = await self.subscription(sub_id)
        await self._set_card(sub["customer"], DECLINING_CARD)
        invoice = await self._renewal_invoice(sub)
        await self.notify("invoice.payment_failed", invoice)
        await self.set_status(sub_id, "past_due")
        return invoice

    async def renew(self, sub_id: str) -> JsonDict:
        """A renewal paid with the working card; the paid invoice (and `active` again if it was not)."""
        sub = await self.subscription(sub_id)
        await self._set_card(sub["customer"], WORKING_CARD)
        open_invoices = await self.upstream.call("GET", "/v1/invoices", {"subscription": sub_id, "limit": 100})
        unpaid = [inv for inv in open_invoices["data"] if inv["status"] == "open"]
        invoice = (await self.upstream.call("POST", f"/v1/invoices/{unpaid[0]['id']}/pay") if unpaid
                   else await self._renewal_invoice(sub))
        await self.notify("invoice.paid", invoice)
        await self.notify("invoice.payment_succeeded", invoice)
        if self.upstream.subscription_overlays.pop(sub_id, None) is not None:
            await self.notify("customer.subscription.updated", await self.subscription(sub_id),
                              previous_attributes={"status": sub["status"]})
        return invoice

    async def _set_card(self, customer: str, card: str) -> None:
        await self.upstream.call("POST", f"/v1/customers/{customer}", {"invoice_settings": {"default_payment_method": card}})

    async def _renewal_invoice(self, sub: JsonDict) -> JsonDict:
        draft = await self.upstream.call("POST", "/v1/invoices", {"customer": sub["customer"], "subscription": sub["id"]})
        return await self.upstream.call("POST", f"/v1/invoices/{draft['id']}/pay")
