"""Model prices: a dated built-in table, overridden by the prices setting's TOML file, then by code."""

from __future__ import annotations

from pathlib import Path

import pytest

from podium import ConfigError
from podium.models import Gateway, Price
from podium.models._prices import PRICES_CHECKED, load_prices


def test_a_prices_file_overrides_the_dated_table_and_code_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert PRICES_CHECKED[:4].isdigit()
    file = tmp_path / "prices.toml"
    file.write_text('["openai:gpt-4o-mini"]\ninput = 0.2\noutput = 0.8\n["acme:big"]\ninput = 1\noutput = 2\n')
    monkeypatch.setenv("PODIUM_PRICES", str(file))
    gw = Gateway()
    assert gw.price("openai:gpt-4o-mini") == Price(input=0.2, output=0.8)
    assert gw.price("acme:big") == Price(input=1.0, output=2.0)
    assert gw.price("openai:gpt-4o") is not None  # the rest of the table stays
    assert Gateway(prices={"acme:big": Price(input=3, output=4)}).price("acme:big") == Price(input=3, output=4)


def test_a_bad_prices_file_names_the_entry(tmp_path: Path) -> None:
    file = tmp_path / "prices.toml"
    file.write_text('["acme:big"]\ninput = "cheap"\n')
    with pytest.raises(ConfigError, match=r"prices.toml: \['acme:big'\] needs numbers input and output"):
        load_prices(str(file))
