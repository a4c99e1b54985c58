"""Every table's rows as portable JSON values, read from one database and written into another.

Tables are read as the database has them (reflected), so a backup of any schema revision holds
exactly what is there; a column the models know takes the model's type (UTCDateTime, Uuid,
JSONDocument), so a value reads and binds the same way on SQLite and PostgreSQL. Each column
names the kind of its values, which is how they are written as JSON and read back exactly.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, Table, delete, func, insert, inspect, select, text
from sqlalchemy import table as named_table
from sqlalchemy import types as sqltypes
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeDecorator

from db.backup_cipher import DamagedBackup
from db.models import Base

_ALEMBIC_TABLE = "alembic_version"  # the revision travels on its own; restore migrates to it
_INSERT_BATCH = 500
# checked in this order: the first type a column's is an instance of names its kind
_KINDS: list[tuple[type, str]] = [(sqltypes.JSON, "json"), (sqltypes.DateTime, "datetime"), (sqltypes.Date, "date"),
                                  (sqltypes.Time, "time"), (sqltypes._Binary, "bytes")]
_ENCODE: dict[str, Callable[[Any], Any]] = {
    "uuid": str, "datetime": datetime.isoformat, "date": date.isoformat, "time": time.isoformat,
    "bytes": lambda value: base64.b64encode(value).decode(), "decimal": str,
}
_DECODE: dict[str, Callable[[Any], Any]] = {
    "uuid": uuid.UUID, "datetime": datetime.fromisoformat, "date": date.fromisoformat, "time": time.fromisoformat,
    "bytes": base64.b64decode, "decimal": Decimal,
}


@dataclass
class TableRows:
    name: str
    columns: list[tuple[str, str]]  # (name, kind)
    rows: list[list[Any]]  # JSON values, in the order of columns

    def records(self) -> list[dict[str, Any]]:
        """The rows as Python values again, by column name."""
        decoders = [(name, _DECODE.get(kind)) for name, kind in self.columns]
        return [{name: value if value is None or decode is None else decode(value)
                 for (name, decode), value in zip(decoders, row, strict=True)} for row in rows_of(self)]

    def to_json(self) -> dict[str, Any]:
        return {"columns": [list(column) for column in self.columns], "rows": self.rows}

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> TableRows:
        try:
            return cls(name, [(str(column), str(kind)) for column, kind in data["columns"]], list(data["rows"]))
        except (KeyError, TypeError, ValueError):
            raise DamagedBackup(f"the backup's table {name} is not readable") from None


def rows_of(table: TableRows) -> list[list[Any]]:
    width = len(table.columns)
    if any(not isinstance(row, list) or len(row) != width for row in table.rows):
        raise DamagedBackup(f"the backup's table {table.name} has rows that do not match its columns")
    return table.rows


@asynccontextmanager
async def one_transaction(engine: AsyncEngine, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
    """A connection in one transaction, committed at the end unless it raised. A snapshot reads
    the database as it was at its first read while the platform goes on writing, and writes
    nothing: PostgreSQL's REPEATABLE READ read-only transaction, or one SQLite read transaction
    (WAL mode keeps its snapshot while writers commit)."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            if snapshot:
                conn = await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            async with conn.begin():
                yield conn
            return
        # pysqlite opens a transaction only before a write, so reads and schema changes would
        # each run on their own: this BEGIN holds them together (IMMEDIATE: the write lock at once)
        await conn.exec_driver_sql("BEGIN" if snapshot else "BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        if snapshot:
            await conn.rollback()
        else:
            await conn.commit()


async def read_tables(conn: AsyncConnection) -> list[TableRows]:
    tables = await conn.run_sync(_portable_tables)
    dumped = []
    for table in tables:
        columns = [(column.name, _kind(column.type)) for column in table.columns]
        encoders = [_ENCODE.get(kind) for _, kind in columns]
        result = await conn.execute(select(table).order_by(*table.primary_key.columns))
        rows = [[value if value is None or encode is None else encode(value)
                 for encode, value in zip(encoders, row, strict=True)] for row in result]
        dumped.append(TableRows(table.name, columns, rows))
    return dumped


async def replace_rows(conn: AsyncConnection, dumped: dict[str, TableRows]) -> int:
    """Empty every table of the database and load the backup's rows into it (parents first); the
    caller's transaction makes it all or nothing. Returns how many rows were written."""
    tables = await conn.run_sync(_portable_tables)
    _check_shapes(tables, dumped)
    for table in reversed(tables):
        await conn.execute(delete(table))
    written = 0
    for table in tables:
        if table.name not in dumped:
            continue
        records = dumped[table.name].records()
        for start in range(0, len(records), _INSERT_BATCH):
            await conn.execute(insert(table), records[start:start + _INSERT_BATCH])
        written += len(records)
    if conn.dialect.name == "postgresql":
        await advance_sequences(conn, tables)
    return written


async def advance_sequences(conn: AsyncConnection, tables: list[Table]) -> None:
    """Set every serial or identity sequence past the largest value loaded into its column: rows
    inserted with their ids leave the sequences where they were, and the next default id would
    collide. (Today's tables use UUIDs; this keeps a restore right if one ever gets a sequence.)"""
    quote = conn.dialect.identifier_preparer.quote
    for table in tables:
        for column in table.columns:
            if not isinstance(column.type, sqltypes.Integer):
                continue
            sequence = (await conn.execute(text("SELECT pg_get_serial_sequence(:table, :column)"),
                                           {"table": quote(table.name), "column": column.name})).scalar()
            if sequence is not None:
                largest = (await conn.execute(select(func.max(column)))).scalar()
                await conn.execute(text("SELECT setval(:sequence, :value, :called)"),
                                   {"sequence": sequence, "value": largest or 1, "called": largest is not None})


async def rows_in(conn: AsyncConnection, names: list[str]) -> dict[str, int]:
    """How many rows each of these tables holds (0 for a table the database does not have)."""
    present = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    counted = select(func.count()).select_from
    return {name: (await conn.execute(counted(named_table(name)))).scalar() if name in present else 0 for name in names}


def _portable_tables(sync: Connection) -> list[Table]:
    reflected = MetaData()
    reflected.reflect(sync, only=lambda name, _meta: name != _ALEMBIC_TABLE)
    for table in reflected.sorted_tables:
        model = Base.metadata.tables.get(table.name)
        for column in table.columns:
            if model is not None and column.name in model.columns:
                column.type = model.columns[column.name].type
    return list(reflected.sorted_tables)


def _check_shapes(tables: list[Table], dumped: dict[str, TableRows]) -> None:
    by_name = {table.name: table for table in tables}
    for name, rows in dumped.items():
        if name not in by_name:
            raise DamagedBackup(f"the backup holds a table {name} that its schema revision does not have")
        missing = [column for column, _ in rows.columns if column not in by_name[name].columns]
        if missing:
            raise DamagedBackup(f"the backup's table {name} has columns its schema revision does not: "
                                f"{', '.join(missing)}")


def _kind(column_type: Any) -> str:
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl_instance
    if isinstance(column_type, sqltypes.Uuid):
        return "uuid" if column_type.as_uuid else "plain"
    if isinstance(column_type, sqltypes.Numeric) and not isinstance(column_type, sqltypes.Float):
        return "decimal" if column_type.asdecimal else "plain"
    return next((kind for sql_type, kind in _KINDS if isinstance(column_type, sql_type)), "plain")
