"""The instance page's "CPU and memory" section: the last 24 hours of the resource sampler's
samples (provisioner.resources) as two bar charts drawn here (web.pages.charts), a bar per
quarter hour: memory at its peak against the gateway's limit, and CPU at its mean against the
cores it is given. The latest sample's figures are written out as text above them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from aiohttp import web

from db.models import Instance, ResourceSample
from db.types import utcnow
from web.keys import SERVICES
from web.pages.charts import bar_chart

SLOT_MINUTES = 15
SLOTS = 24 * 60 // SLOT_MINUTES
MB = 1024 * 1024


def mb_text(memory_bytes: float) -> str:
    return f"{memory_bytes / MB:,.0f} MB"


def percent_text(value: float) -> str:
    return f"{value:.1f}%"


def _slots(samples: Sequence[ResourceSample], now: datetime) -> list[list[ResourceSample]]:
    """The samples in each quarter hour of the day that ends at `now`, oldest first."""
    start = now - timedelta(minutes=SLOTS * SLOT_MINUTES)
    slots: list[list[ResourceSample]] = [[] for _ in range(SLOTS)]
    for sample in samples:
        index = int((sample.taken_at - start).total_seconds() // (SLOT_MINUTES * 60))
        if 0 <= index < SLOTS:
            slots[index].append(sample)
    return slots


def _slot_time(now: datetime, index: int) -> str:
    began = now - timedelta(minutes=(SLOTS - index) * SLOT_MINUTES)
    return f"{began:%H:%M}–{began + timedelta(minutes=SLOT_MINUTES):%H:%M} UTC"


def memory_chart(slots: list[list[ResourceSample]], now: datetime, limit_mb: int | None) -> dict:
    peaks = [max(sample.memory_bytes for sample in slot) if slot else None for slot in slots]
    limit = limit_mb * MB if limit_mb else None
    highest = max((peak for peak in peaks if peak is not None), default=0)
    chart = bar_chart(peaks, [f"{_slot_time(now, i)}: at most {mb_text(peak)}" if peak is not None else ""
                              for i, peak in enumerate(peaks)],
                      top=max(highest, limit or 0), line=limit, current=_last(peaks))
    if highest:
        at = max((i for i, peak in enumerate(peaks) if peak == highest))
        summary = f"At most {mb_text(highest)}, {_slot_time(now, at)}"
        summary += f", of its {mb_text(limit)} limit (the dashed line)." if limit else "."
    else:
        summary = "No memory measured in the last 24 hours."
    return chart | {"summary": summary, "top": mb_text(max(highest, limit or 0))}


def cpu_chart(slots: list[list[ResourceSample]], now: datetime, cpus: float | None) -> dict:
    loads = [[sample.cpu_percent for sample in slot if sample.cpu_percent is not None] for slot in slots]
    means = [sum(load) / len(load) if load else None for load in loads]
    limit = cpus * 100 if cpus else None
    highest = max((mean for mean in means if mean is not None), default=0)
    top = max(highest, limit or 0, 1)
    chart = bar_chart(means, [f"{_slot_time(now, i)}: {percent_text(mean)} on average" if mean is not None else ""
                              for i, mean in enumerate(means)], top=top, line=limit, current=_last(means))
    measured = [value for load in loads for value in load]
    if measured:
        summary = (f"{percent_text(sum(measured) / len(measured))} of one core on average, at most "
                   f"{percent_text(max(measured))}")
        summary += f"; it may use {percent_text(limit)} (the dashed line)." if limit else "."
    else:
        summary = "No CPU load measured in the last 24 hours."
    return chart | {"summary": summary, "top": percent_text(top)}


def _last(values: list[float | None]) -> int | None:
    return max((i for i, value in enumerate(values) if value is not None), default=None)


def latest_text(latest: ResourceSample | None, limit_mb: int | None) -> str | None:
    if latest is None:
        return None
    memory = mb_text(latest.memory_bytes)
    if limit_mb:
        memory += f" of {mb_text(limit_mb * MB)} ({latest.memory_bytes / (limit_mb * MB) * 100:.0f}%)"
    cpu = f"CPU {percent_text(latest.cpu_percent)} of one core" if latest.cpu_percent is not None else \
        "CPU load shown from the next sample on"
    return f"At {latest.taken_at:%H:%M} UTC: memory {memory}; {cpu}."


async def resource_panel(request: web.Request, instance: Instance) -> dict | None:
    """What the section shows; None when no samples are taken here."""
    history = request.app[SERVICES].resources
    if history is None:
        return None
    samples = await history.last_day(instance.id)
    now = utcnow()
    slots = _slots(samples, now)
    return {"latest": latest_text(samples[-1] if samples else None, instance.memory_mb), "charts": [
        memory_chart(slots, now, instance.memory_mb) | {"name": "memory", "heading": "Memory",
                                                        "title": "Memory over the last 24 hours"},
        cpu_chart(slots, now, instance.cpus) | {"name": "cpu", "heading": "CPU",
                                                "title": "CPU load over the last 24 hours"},
    ]}
