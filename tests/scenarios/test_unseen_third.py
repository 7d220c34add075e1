"""The third unseen-data round (docs/status.md, seventh session): what real exports do to the scenarios'
files, each a small file written here. An unclosed quote in a free-text column took the rest of the
file into one cell (rows lost without a word); a row with a quoted line break was named by its last
line; a column named twice was read from one of them silently; the churn outcomes file was read by
rules of its own (a capitalised header refused, a customer with two outcomes kept the last); a plan
written in another Unicode form was another plan; an empty stock or orders file gave recommendations
with no reason."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from podium import ConfigError

sys.path.insert(0, str(Path(__file__).parent / "data" / "third"))
from export import write

CATALOGUE = ["sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels"]
CHURN = ["customer_id", "tenure_months", "monthly_charges", "support_tickets_90d", "last_login_days", "plan"]
FRAUD = ["tx_id", "customer_id", "amount", "currency", "merchant_category", "country", "home_country", "hour",
         "new_device", "tx_last_24h"]


def _product(i: int) -> dict:
    return {"sku": f"ŠU-{i:03d}/é", "vendor": "Nordlicht, GmbH", "unit_cost": 10 + i, "list_price": 30 + i,
            "min_margin_pct": 25, "channels": "shop.ch; galaxus/outdoor"}


def _customer(i: int) -> dict:
    return {"customer_id": f"Łódź-{i}", "tenure_months": 3 + i, "monthly_charges": 40.5, "support_tickets_90d": 1,
            "last_login_days": 7, "plan": "Família"}


def _payment(i: int) -> dict:
    return {"tx_id": f"T-{i}", "customer_id": "João·1", "amount": 12.5, "currency": "BRL", "merchant_category": "fuel",
            "country": "BR", "home_country": "BR", "hour": 12, "new_device": 0, "tx_last_24h": 1}


def _unclosed(path: Path, rows: list[dict], columns: list[str]) -> Path:
    """``rows`` as an export writes them, then the free-text note of the second row opened by a quote that
    is never closed (a note that starts with ``"`` in an export that does not quote)."""
    write(path, rows, columns, seed=1, extra=True, shuffle=False, crlf=True, bom=True, header_case=False,
          spaces=False, blank_tail=False)
    text = path.read_bytes().decode("utf-8")
    assert text.count('"called twice, no answer"') == 1
    path.write_bytes(text.replace('"called twice, no answer"', '"called twice').encode("utf-8"))
    return path


def test_an_unclosed_quote_is_an_error_naming_its_line_not_lost_rows(tmp_path):
    """Before: the catalogue of 6 products read as 2, the transactions 6 as 2, the customers 6 as 2:
    everything after the quote was one cell of a column no one reads."""
    from examples.scenarios import _churn_format, _retail, fraud

    readers = [
        (_unclosed(tmp_path / "catalogue.csv", [_product(i) for i in range(6)], CATALOGUE), _retail.read_catalogue),
        (_unclosed(tmp_path / "tx.csv", [_payment(i) for i in range(6)], FRAUD),
         lambda p: fraud.read_transactions(p, labelled=False)),
        (_unclosed(tmp_path / "customers.csv", [_customer(i) for i in range(6)], CHURN),
         lambda p: _churn_format.read(p, labelled=False)),
    ]
    for path, read in readers:
        with pytest.raises(ConfigError, match=rf"{path.name}:3: not valid CSV .*a cell that starts with a quote"):
            read(str(path))


def test_a_row_with_a_quoted_line_break_is_named_by_its_first_line(tmp_path):
    """Before: the retail and churn readers named the row's last line (4), as the fraud one used not to."""
    from examples.scenarios import _churn_format, _retail

    cat = tmp_path / "catalogue.csv"
    cat.write_text('sku,vendor,unit_cost,list_price,min_margin_pct,channels,note\nA,v,1,2,10,web,ok\n'
                   'B,v,"1,5",2,10,web,"two\nlines"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"catalogue.csv:3: column unit_cost is '1,5'"):
        _retail.read_catalogue(str(cat))
    churn = tmp_path / "customers.csv"
    churn.write_text(",".join(CHURN) + ',note\na,1,2,3,4,p,x\nb,1,"$5",3,4,p,"two\nlines"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"customers.csv:3: column 3 \(monthly_charges\) is '\$5'"):
        _churn_format.read(str(churn), labelled=False)


def test_a_column_named_twice_is_an_error(tmp_path):
    """Before: ``sku`` twice (the product's, and a supplier's further right) read the supplier's SKU."""
    from examples.scenarios import _retail

    cat = tmp_path / "catalogue.csv"
    cat.write_text("SKU,vendor,unit_cost,list_price,min_margin_pct,channels,sku\nA,v,1,2,10,web,SUPPLIER-9\n",
                   encoding="utf-8")
    with pytest.raises(ConfigError, match=r"catalogue.csv:1: the header names column 'sku' 2 times \(columns 1, 7\)"):
        _retail.read_catalogue(str(cat))


def test_the_outcomes_file_is_read_like_the_other_churn_files(tmp_path):
    """Before: ``Customer_ID , Churned`` (as the other churn files may be written) was refused, a
    customer with two different outcomes kept the last silently, and an error named the last line."""
    from examples.scenarios import _churn_format

    good = tmp_path / "later.csv"
    good.write_text('\ufeffCustomer_ID , Churned ,note\r\nŁódź-1, yes ,"a\r\nb"\r\nZoë-2,0,\r\n\r\n', encoding="utf-8")
    assert _churn_format.read_outcomes(str(good)) == {"Łódź-1": 1, "Zoë-2": 0}
    twice = tmp_path / "twice.csv"
    twice.write_text("customer_id,churned\nA,1\nB,0\nA,0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"twice.csv:4: customer 'A' churned 0, but 1 on line 2"):
        _churn_format.read_outcomes(str(twice))
    bad = tmp_path / "bad.csv"
    bad.write_text('customer_id,churned,note\nA,"maybe",x\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.csv:2: column 2 \(churned\) is 'maybe'"):
        _churn_format.read_outcomes(str(bad))


def test_a_plan_is_one_plan_however_it_is_spelled(tmp_path):
    """Before: ``Família`` typed with a combining accent (as macOS exports write it) was a plan of its own,
    one the model never saw."""
    from examples.scenarios import _churn_format

    path = tmp_path / "customers.csv"
    rows = [_customer(1), {**_customer(2), "plan": "Fami\u0301lia"}, {**_customer(3), "plan": " FAMÍLIA  "}]
    write(path, rows, CHURN, seed=2, spaces=False)
    assert {r["plan"] for r in _churn_format.read(str(path), labelled=False)} == {"família"}


def test_an_empty_stock_or_orders_file_is_an_error(tmp_path):
    """Before: a stock file of only a header made every product out of stock, and recommend returned no
    recommendation with no reason; an orders file of only a header ranked the catalogue alphabetically as
    "in stock; not ordered by anyone yet"."""
    from examples.scenarios import _retail

    stock, orders = tmp_path / "inventory.csv", tmp_path / "orders.csv"
    stock.write_text("sku,warehouse,qty\r\n\r\n", encoding="utf-8")
    orders.write_text("\ufeffcustomer_id,sku,ts\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"inventory.csv: no stock lines \(only a header\)"):
        _retail.read_inventory(str(stock))
    with pytest.raises(ConfigError, match=r"orders.csv: no order lines \(only a header\)"):
        _retail.read_orders(str(orders))
