"""Reconciliation with Stripe: webhooks can be lost, so every so often (CLAWFLEET_STRIPE_SYNC_INTERVAL_S)
one platform process reads again every subscription that can still change (Billing.sync_once)."""

SYNC_LEASE = "stripe-sync"
