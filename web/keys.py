"""Typed keys for what the app and its requests hold."""

from aiohttp import web

from db.models import User
from web.services import WebConfig, WebServices

SERVICES = web.AppKey("services", WebServices)
CONFIG = web.AppKey("config", WebConfig)

USER = web.RequestKey("user", User)  # the authenticated user, set by web.auth
