"""The small HTML pages the fake serves in place of Stripe's hosted Checkout and Portal."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

from aiohttp import web

from tests.fakes.stripe.protocol import JsonDict
from tests.fakes.stripe.upstream import Upstream

ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "isk", "huf", "ugx", "xof", "xaf"}


class HostedSessions:
    """Sessions (by id) whose `url` is one of the fake's pages, `<fake>/<page_path>/<id>`."""

    page_path = ""

    def __init__(self, upstream: Upstream, base_url: Callable[[], str]) -> None:
        self.upstream = upstream
        self.base_url = base_url  # read late: the fake's port is known only once it is started
        self.sessions: dict[str, JsonDict] = {}

    def page_url(self, session_id: str) -> str:
        return f"{self.base_url()}/{self.page_path}/{session_id}"


def page(title: str, body: str, status: int = 200) -> web.Response:
    html = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>"
            f"<body><main><h1>{escape(title)}</h1>{body}</main></body></html>")
    return web.Response(text=html, content_type="text/html", status=status)


def price_text(plan: JsonDict, quantity: int = 1) -> str:
    """What a plan costs, as Checkout shows it: `9.00 EUR / month`."""
    amount = int(plan.get("amount") or 0) * quantity
    currency = str(plan.get("currency", "")).lower()
    value = f"{amount}" if currency in ZERO_DECIMAL else f"{amount / 100:.2f}"
    count = int(plan.get("interval_count") or 1)
    every = plan.get("interval", "") if count == 1 else f"{count} {plan.get('interval', '')}s"
    return f"{value} {currency.upper()} / {every}"


def plan_name(plan: JsonDict, product: JsonDict | None) -> str:
    return (product or {}).get("name") or plan.get("nickname") or plan.get("name") or plan["id"]


def link(url: str, text: str, test_id: str) -> str:
    return f"<a href=\"{escape(url)}\" data-testid=\"{test_id}\">{escape(text)}</a>"


def button_form(action: str, label: str, test_id: str, hidden: dict[str, str] | None = None) -> str:
    fields = "".join(f"<input type=\"hidden\" name=\"{escape(k)}\" value=\"{escape(v)}\">"
                     for k, v in (hidden or {}).items())
    return (f"<form method=\"post\" action=\"{escape(action)}\">{fields}"
            f"<button type=\"submit\" data-testid=\"{test_id}\">{escape(label)}</button></form>")
