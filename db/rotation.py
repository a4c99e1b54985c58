"""Re-seal every secret under the key ring's first key, so older keys can be dropped."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from db.sealing import KeyRing, associated_data, reseal, sealed_columns


@dataclass
class RotationReport:
    resealed: int = 0
    already_current: int = 0
    per_table: dict[str, int] = field(default_factory=dict)  # re-sealed values per table


async def rotate_secrets(engine: AsyncEngine, ring: KeyRing) -> RotationReport:
    """One transaction: either every stale secret is re-sealed, or none is."""
    report = RotationReport()
    async with engine.begin() as conn:
        for table, columns in sealed_columns():
            resealed = 0
            rows = await conn.execute(select(table.c.id, *(table.c[name] for name in columns)))
            for row in rows.all():
                fresh: dict[str, str] = {}
                for name in columns:
                    sealed = row._mapping[name]
                    if sealed is None:
                        continue
                    if ring.is_current(sealed):
                        report.already_current += 1
                        continue
                    fresh[name] = reseal(ring, sealed, associated_data(table.name, row.id, name))
                if fresh:
                    await conn.execute(update(table).where(table.c.id == row.id).values(**fresh))
                    resealed += len(fresh)
            report.per_table[table.name] = resealed
            report.resealed += resealed
    return report
