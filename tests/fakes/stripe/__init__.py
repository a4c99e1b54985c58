"""A fake Stripe for tests: localstripe behind a front that adds what billing needs, on 127.0.0.1.

Code under test talks to `FakeStripe.api_url` through the real `stripe` library as if it were
api.stripe.com (`stripe.StripeClient(key, base_addresses={"api": fake.api_url})`). The front
(`server`) answers itself:
- Checkout Sessions and the hosted Checkout page (`checkout`): create, retrieve (with
  `expand`), list, line items, expire; paying makes the localstripe subscription and delivers
  `checkout.session.completed`.
- Customer Portal sessions and the portal page (`portal`): cancel a subscription from it.
- Prices over localstripe's plans (`prices`): a plan's id is the price's id; metered prices on
  a meter too.
- Billing Meters (`meters`): meters, meter events (a repeated identifier refused), event
  summaries (what Stripe would bill a customer over a window).
Every other `/v1/...` request goes to localstripe as sent (`upstream`), with
`items[N][price]` translated to `items[N][plan]` on subscription create and update. On top of
both (`api_guard`), for every POST: Stripe's idempotency (`idempotency`: replay with `Idempotent-Replayed:
true`, 400 `idempotency_error` on other parameters, per API key); a request log
(`FakeStripe.requests`: method, path, idempotency key, params, status, replayed); faults
(`faults`: `fail_next`, `delay_next`). Events (`events`): `deliver`, `send` (the object
fetched fresh), `redeliver`, signed as Stripe signs them (`sign`). What Stripe's clock and
customers do (`lifecycle`): `fail_payment`, `renew_subscription`, `cancel_subscription`,
`set_subscription_status`. `localstripe_process` runs the one localstripe of a test session;
`pages` holds the hosted pages' HTML, `serving` the loopback server under it all (tests use its
`serving(app)` for their own small endpoints).

localstripe (1.15.10) keeps the state: customers (card `pm_card_visa`), products, plans,
subscriptions, invoices, payment intents. Known gaps, from localstripe: objects in its 2017
layout (`plan` on the subscription and its item; the front adds each item's `price` and
period, but nothing else of today's shape), one licensed item per subscription (the front keeps
metered items beside it: `upstream`), no trials that become active (the fake lays
`trialing` over a paid subscription), no `past_due` through its API (an overlay after a really
declined renewal), the API version is not honoured; its own webhooks (a second late, old
layout, no `customer.subscription.updated`, `invoice.paid` or `checkout.session.completed`)
are not used: the front sends every event itself. From the front: see each module's docstring.
"""

from tests.fakes.stripe.events import Delivery, build_event, sign
from tests.fakes.stripe.faults import StripeRequest
from tests.fakes.stripe.localstripe_process import LocalStripeProcess
from tests.fakes.stripe.protocol import API_VERSION, LOOPBACK, JsonDict, StripeError, parse_form
from tests.fakes.stripe.server import FakeStripe

__all__ = ["API_VERSION", "Delivery", "FakeStripe", "JsonDict", "LOOPBACK", "LocalStripeProcess", "StripeError",
           "StripeRequest", "build_event", "parse_form", "sign"]
