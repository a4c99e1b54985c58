"""Typed keys for what the app and its requests hold."""

from aiohttp import web

from accounts.tokens import Credential
from db.models import User
from web.services import WebConfig, WebServices

SERVICES = web.AppKey("services", WebServices)
CONFIG = web.AppKey("config", WebConfig)

USER = web.RequestKey("user", User)  # the authenticated user, set by web.auth
CREDENTIAL = web.RequestKey("credential", Credential)  # the token the user presented, set by web.auth
VIA_COOKIE = web.RequestKey("via_cookie", bool)  # True: the session cookie, so forms need their CSRF token
INSTANCE_HOST = web.RequestKey("instance_host", str)  # the subdomain, on an instance's own host (web.instance_site)
