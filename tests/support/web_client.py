"""A person's browser without a browser: a cookie jar, the pages' forms filled in and posted
with the headers a browser sends (Origin, the form's CSRF token), over the real app on loopback."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from clawfleet.settings import Settings
from tests.support.api_client import Api, running_api
from tests.support.memory_runtime import MemoryRuntime

_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]*)"')
PASSWORD = "correct horse battery"


@dataclass
class Page:
    status: int
    url: str
    text: str
    headers: dict

    @property
    def csrf(self) -> str:
        found = _CSRF.search(self.text)
        assert found, f"no CSRF field on {self.url}"
        return found.group(1)

    def has(self, words: str) -> bool:
        return words in html.unescape(self.text)


class WebUser:
    """One browser: its own cookies. `origin` is sent with every post, as browsers do."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.origin = api.url("/").rstrip("/")
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))  # 127.0.0.1's cookies too

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, **kwargs) -> Page:
        async with self.http.get(self.api.url(path), **kwargs) as response:
            return Page(response.status, str(response.url), await response.text(), dict(response.headers))

    async def post(self, path: str, fields: dict, *, csrf: str | None = None, origin: str | None = "",
                   follow: bool = True) -> Page:
        headers = {} if origin is None else {"Origin": origin or self.origin}
        data = dict(fields)
        if csrf is not None:
            data["csrf_token"] = csrf
        async with self.http.post(self.api.url(path), data=data, headers=headers,
                                  allow_redirects=follow) as response:
            return Page(response.status, str(response.url), await response.text(), dict(response.headers))

    async def submit(self, page_path: str, fields: dict, *, action: str | None = None) -> Page:
        """Open the page, then post its form as a person would: with the page's CSRF token."""
        page = await self.get(page_path)
        return await self.post(action or page_path, fields, csrf=page.csrf)

    async def sign_up(self, email: str, password: str = PASSWORD) -> Page:
        return await self.submit("/signup", {"email": email, "password": password})

    def cookie(self, name: str) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


@asynccontextmanager
async def serving_pages(settings: Settings) -> AsyncIterator[Api]:
    """The real app over in-memory gateways."""
    runtime = MemoryRuntime()
    try:
        async with running_api(settings, runtime) as api:
            yield api
    finally:
        await runtime.close()
