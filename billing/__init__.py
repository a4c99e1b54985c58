"""Plans, Stripe Checkout and Customer Portal links, webhook events and entitlements."""
