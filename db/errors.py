"""Errors the use cases of every layer raise (accounts, provisioner, billing), mapped to HTTP
statuses by web/errors.py and to chat replies by the bot. Each carries a message meant for the
person who caused it."""

from __future__ import annotations


class ServiceError(Exception):
    code = "service_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    """Bad input; `field` names what to fix. Nothing was changed."""

    code = "invalid_input"


class NotFound(ServiceError):
    """Missing, or someone else's (never told apart, so nothing leaks)."""

    code = "not_found"


class Conflict(ServiceError):
    """The request clashes with the current state (busy, already used, wrong status)."""

    code = "conflict"


class AccessDenied(ServiceError):
    """The access policy does not let this person create instances."""

    code = "access_denied"


class LimitReached(ServiceError):
    """The user's plan or the operator's cap does not allow more."""

    code = "limit_reached"


class CapacityExceeded(ServiceError):
    """The host has no room (memory budget); the operator must add capacity."""

    code = "capacity_exceeded"


class AuthenticationFailed(ServiceError):
    code = "unauthorized"


class Unavailable(ServiceError):
    """Something we depend on (Telegram, the runtime) did not answer; trying again may work."""

    code = "unavailable"


class TooManyAttempts(ServiceError):
    """Too many attempts (logins, registrations) in a short time; `retry_after_s` says when the
    next one is let through. The message never says which budget ran out."""

    code = "too_many_attempts"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
