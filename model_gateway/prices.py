"""What model calls cost: a table of US dollars per million tokens, per provider and model, read
from TOML (the shipped `prices.toml`, or the operator's own, CLAWFLEET_MODEL_PRICES_FILE).

Costs are counted in whole micro-dollars (integers), so sums over a month add up exactly.
A mistake in the file stops the platform with the file, the table and the field named.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path

from model_gateway.usage import Usage
from provisioner.providers import PROVIDERS

SHIPPED = Path(__file__).with_name("prices.toml")
ANY_MODEL = "*"
FIELDS = ("input", "output", "cache_read", "cache_write")
MAX_PRICE = 10_000.0  # per million tokens: a typo beyond this would make every cap meaningless


class PricesError(ValueError):
    """The price table cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    def micro_usd(self, usage: Usage) -> int:
        # dollars per million tokens = micro-dollars per token
        return math.ceil(usage.input_tokens * self.input + usage.output_tokens * self.output
                         + usage.cache_read_tokens * self.cache_read + usage.cache_write_tokens * self.cache_write)


@dataclass(frozen=True)
class PriceTable:
    prices: dict[tuple[str, str], Price]  # (provider, model or ANY_MODEL) -> price

    def price(self, provider: str, model: str | None) -> Price | None:
        return self.prices.get((provider, model or ANY_MODEL)) or self.prices.get((provider, ANY_MODEL))

    def cost_micro_usd(self, provider: str, model: str | None, usage: Usage) -> int:
        """What `usage` cost; 0 for a provider the table does not price."""
        price = self.price(provider, model)
        return price.micro_usd(usage) if price is not None else 0


def load_prices(path: Path | None = None) -> PriceTable:
    path = path or SHIPPED
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PricesError(f"{path}: cannot be read ({exc})") from None
    return parse_prices(text, str(path))


def parse_prices(text: str, source: str) -> PriceTable:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PricesError(f"{source}: not valid TOML ({exc})") from None
    known = {provider.id for provider in PROVIDERS}
    prices: dict[tuple[str, str], Price] = {}
    for provider, models in document.items():
        if provider not in known:
            raise PricesError(f"{source}: [{provider}] is not a provider ClawFleet offers ({', '.join(sorted(known))})")
        if not isinstance(models, dict):
            raise PricesError(f"{source}: {provider} must be a table of models")
        for model, fields in models.items():
            prices[(provider, model)] = _price(fields, f"{source}: {provider}.\"{model}\"")
    return PriceTable(prices)


def _price(fields: object, where: str) -> Price:
    if not isinstance(fields, dict):
        raise PricesError(f"{where} must be a table with {', '.join(FIELDS)}")
    unknown = set(fields) - set(FIELDS)
    if unknown:
        raise PricesError(f"{where}: unknown field {sorted(unknown)[0]!r} (fields: {', '.join(FIELDS)})")
    values: dict[str, float] = {}
    for name in FIELDS:
        value = fields.get(name, values.get("input") if name.startswith("cache_") else None)
        if value is None:
            raise PricesError(f"{where}.{name} is missing (US dollars per million tokens)")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_PRICE:
            raise PricesError(f"{where}.{name} must be a number of US dollars per million tokens, from 0 to "
                              f"{MAX_PRICE:g}")
        values[name] = float(value)
    return Price(**values)
