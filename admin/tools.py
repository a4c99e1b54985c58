"""What the admin section and the admin API are given, opened by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from admin.audit_search import AuditSearch
from admin.broadcasts import Broadcasts
from admin.directory import Directory
from admin.operators import Operators
from admin.suspensions import Suspensions


@dataclass(frozen=True)
class AdminTools:
    operators: Operators
    directory: Directory
    audit: AuditSearch
    suspensions: Suspensions
    broadcasts: Broadcasts
    bot_running: bool  # broadcasts are delivered only while the bot runs; queued ones wait
