"""Pages of a long list, newest first, by keyset: each page starts after the (created_at, id) of
the last row shown, so page 200 costs what page 1 does (an index walk, no OFFSET to skip), and
rows added meanwhile do not shift what comes next. The cursor is opaque to the pages: text
made here and read back here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from db.errors import InvalidInput

T = TypeVar("T")
PAGE_SIZE = 50


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next_cursor: str | None  # where the next page starts; None: this is the last


def cursor_of(created_at: datetime, row_id: uuid.UUID) -> str:
    return f"{created_at.astimezone(timezone.utc).strftime('%Y%m%dT%H%M%S.%f')}~{row_id}"


def parse_cursor(value: object, field: str = "after") -> tuple[datetime, uuid.UUID] | None:
    if value in (None, ""):
        return None
    try:
        when, _, row_id = str(value).partition("~")
        return datetime.strptime(when, "%Y%m%dT%H%M%S.%f").replace(tzinfo=timezone.utc), uuid.UUID(row_id)
    except ValueError:
        raise InvalidInput("That page does not exist: go back to the first page.", field=field) from None


async def newest_first(session: AsyncSession, query: Select, created_at, row_id, cursor: object,
                       size: int = PAGE_SIZE) -> tuple[list, str | None]:
    """The rows of `query` (its first entity has the `created_at` and `row_id` columns) after
    `cursor`, newest first, and the next page's cursor."""
    after = parse_cursor(cursor)
    if after is not None:
        query = query.where(or_(created_at < after[0], and_(created_at == after[0], row_id < after[1])))
    rows = list((await session.execute(query.order_by(created_at.desc(), row_id.desc()).limit(size + 1))).all())
    more = len(rows) > size
    rows = rows[:size]
    if not more:
        return rows, None
    last = rows[-1][0]
    return rows, cursor_of(last.created_at, last.id)


def contains(column, text: str):
    """Case-insensitive substring match, the text's own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")
