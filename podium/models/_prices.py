"""Prices per model, for the cost of each call.

The table below is dated (:data:`PRICES_CHECKED`): list prices change, so override it, most
specific last: a TOML file named by the ``prices`` setting (podium.toml, ``PODIUM_PRICES``)::

    # prices.toml: US dollars per million tokens
    ["openai:gpt-4o-mini"]
    input = 0.15
    output = 0.60

then ``Gateway(prices={...})`` in code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._base import Usage


@dataclass(frozen=True, kw_only=True, slots=True)
class Price:
    """US dollars per million tokens."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input + usage.output_tokens * self.output) / 1_000_000


FREE = Price(input=0.0, output=0.0)

PRICES_CHECKED = "2025-06"
"""When the providers' published list prices below were last checked (standard tier, USD per 1M
tokens). They change: use the ``prices`` setting or ``Gateway(prices=...)`` for billing-grade figures."""

DEFAULT_PRICES: dict[str, Price] = {
    "openai:gpt-4o-mini": Price(input=0.15, output=0.60),
    "openai:gpt-4o": Price(input=2.50, output=10.00),
    "openai:gpt-4.1": Price(input=2.00, output=8.00),
    "openai:gpt-4.1-mini": Price(input=0.40, output=1.60),
    "openai:gpt-4.1-nano": Price(input=0.10, output=0.40),
    "anthropic:claude-3-5-haiku": Price(input=0.80, output=4.00),
    "anthropic:claude-3-5-sonnet": Price(input=3.00, output=15.00),
    "anthropic:claude-sonnet-4": Price(input=3.00, output=15.00),
    "anthropic:claude-opus-4": Price(input=15.00, output=75.00),
    # Models served on your own machine cost nothing per token.
    "local": FREE,
    "ollama": FREE,
    "llamacpp": FREE,
    "lmstudio": FREE,
    "vllm": FREE,
    "scripted": FREE,
}


def find_price(spec: str, table: Mapping[str, Price]) -> Price | None:
    """The price of ``provider:model``: an exact entry, else the longest entry the model name starts
    with (``gpt-4o-mini-2024-07-18`` uses ``gpt-4o-mini``), else the provider's entry, else None."""
    if spec in table:
        return table[spec]
    provider, _, _ = spec.partition(":")
    best: str | None = None
    for key in table:
        if ":" in key and spec.startswith(key) and (best is None or len(key) > len(best)):
            best = key
    if best is not None:
        return table[best]
    return table.get(provider)


def load_prices(path: str) -> dict[str, Price]:
    """A price table from a TOML file (``["provider:model"]`` tables with ``input`` and ``output``);
    a mistake names the file, the entry and the fix."""
    import tomllib

    from ..errors import ConfigError

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read the prices file {path}: {exc.strerror}; fix the prices setting") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    out: dict[str, Price] = {}
    for spec, entry in data.items():
        try:
            out[spec] = Price(input=float(entry["input"]), output=float(entry["output"]))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(
                f"{path}: [{spec!r}] needs numbers input and output (US dollars per million tokens)"
            ) from None
    return out


def configured_prices() -> dict[str, Price]:
    """The defaults with the ``prices`` setting's file over them."""
    from ..settings import setting

    path = setting("prices")
    return {**DEFAULT_PRICES, **(load_prices(str(path)) if path else {})}

