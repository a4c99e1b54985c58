"""The aiohttp app: REST API, dashboard, webhooks, per-instance proxy, health and metrics."""
