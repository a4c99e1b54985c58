"""Reading /metrics as a scraper does: the text parsed with prometheus_client's own parser."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.metrics_core import Metric


def parsed(text: str) -> dict[str, Metric]:
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families: dict[str, Metric], sample_name: str, **labels: str) -> float:
    """The sample's value; 0 when the series is not there yet (a counter not moved)."""
    family = families[sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")]
    found = [sample.value for sample in family.samples if sample.name == sample_name
             and all(sample.labels.get(key) == wanted for key, wanted in labels.items())]
    return sum(found)


async def scrape(api, token: str | None = None) -> dict[str, Metric]:
    status, text = await api.call("GET", "/metrics", token=token)
    assert status == 200, text
    return parsed(text)
