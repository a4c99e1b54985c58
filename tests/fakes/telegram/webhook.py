"""Webhooks: setWebhook, deleteWebhook, getWebhookInfo, and Telegram's sender that POSTs each update
to the hook, one at a time and in order, until it answers 2xx."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
from urllib.parse import urlsplit

import aiohttp

from tests.fakes.telegram.dispatch import Dispatch, api_method
from tests.fakes.telegram.params import Params
from tests.fakes.telegram.protocol import LOOPBACK, Described, JsonDict, bad_request
from tests.fakes.telegram.records import Webhook
from tests.fakes.telegram.state import now


class Webhooks(Dispatch):
    """A webhook's reply may carry a call, so this part serves calls too (Dispatch)."""

    @property
    def webhook_url(self) -> str:
        return self._webhook.url if self._webhook else ""

    @api_method("setWebhook")
    async def _set_webhook(self, p: Params) -> Described:
        url = p.text("url") or ""
        if not url:
            return await self._drop_webhook(p.flag("drop_pending_updates"))
        _require_loopback(url)
        secret = p.text("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise bad_request("secret token contains unallowed characters")
        allowed = p.json("allowed_updates", what="allowed updates")
        if isinstance(allowed, list):
            self._allowed_updates = [str(kind) for kind in allowed]
        if p.flag("drop_pending_updates"):
            self._updates.clear()
        already = self._webhook is not None and self._webhook.url == url
        self._webhook = Webhook(url, secret, p.integer("max_connections") or 40, p.text("ip_address"))
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.get_running_loop().create_task(self._deliver_to_webhook())
        self._changed.notify()
        return Described(True, "Webhook is already set" if already else "Webhook was set")

    @api_method("deleteWebhook")
    async def _delete_webhook(self, p: Params) -> Described:
        return await self._drop_webhook(p.flag("drop_pending_updates"))

    async def _drop_webhook(self, drop_pending: bool) -> Described:
        had_one, self._webhook = self._webhook is not None, None
        await self._stop_webhook_delivery()
        if drop_pending:
            self._updates.clear()
        self._changed.notify()
        return Described(True, "Webhook was deleted" if had_one else "Webhook is already deleted")

    @api_method("getWebhookInfo")
    async def _get_webhook_info(self, p: Params) -> JsonDict:
        info: JsonDict = {"url": self.webhook_url, "has_custom_certificate": False,
                          "pending_update_count": len(self._updates)}
        if self._webhook:
            info["max_connections"] = self._webhook.max_connections
            info["ip_address"] = self._webhook.ip_address or LOOPBACK
            if self._webhook.last_error_date:
                info["last_error_date"] = self._webhook.last_error_date
                info["last_error_message"] = self._webhook.last_error_message
        if self._allowed_updates:
            info["allowed_updates"] = list(self._allowed_updates)
        return info

    async def _deliver_to_webhook(self) -> None:
        """Telegram's webhook sender: one update at a time, in order, retried until a 2xx."""
        while self._webhook is not None and not self.telegram.closing:
            hook = self._webhook
            if not self._updates:
                await self._changed.wait(1.0)
                continue
            update = self._updates[0]
            error = await self._post_update(hook, update)
            if error is None:
                if self._updates and self._updates[0] is update:
                    self._updates.pop(0)
                self._changed.notify()
            else:
                hook.last_error_date, hook.last_error_message = now(), error
                await asyncio.sleep(self.telegram.webhook_retry_s)

    async def _post_update(self, hook: Webhook, update: JsonDict) -> str | None:
        _require_loopback(hook.url)  # checked at setWebhook too; never send anywhere else
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = hook.secret_token
        try:
            async with self.telegram.http.post(
                hook.url, data=json.dumps(update), headers=headers, allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                body = await response.read()
                if not 200 <= response.status < 300:
                    return f"Wrong response from the webhook: {response.status} {response.reason}"
                await self._answer_in_webhook_reply(response.content_type, body)
                return None
        except aiohttp.ClientConnectorError:
            return "Connection refused"
        except TimeoutError:
            return "Read timeout expired"
        except aiohttp.ClientError as exc:
            return f"Connection failed: {type(exc).__name__}"

    async def _answer_in_webhook_reply(self, content_type: str, body: bytes) -> None:
        """A webhook may answer with {"method": ..., params}: Telegram then makes that call."""
        if content_type != "application/json":
            return
        try:
            reply = json.loads(body)
        except ValueError:
            return
        if isinstance(reply, dict) and isinstance(reply.get("method"), str):
            values = {k: v for k, v in reply.items() if k != "method"}
            await self.call(reply["method"], values, {}, "WEBHOOK-REPLY")

    async def _stop_webhook_delivery(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task and not task.done() and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


def _require_loopback(url: str) -> None:
    """Webhooks may only point at this machine: tests must never send traffic anywhere else."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise bad_request("bad webhook: Wrong HTTP URL specified")
    if host == "localhost":
        return
    try:
        if ipaddress.ip_address(host).is_loopback:
            return
    except ValueError:
        pass
    raise bad_request(f"bad webhook: the fake Bot API only delivers to loopback addresses, not {host!r}")
