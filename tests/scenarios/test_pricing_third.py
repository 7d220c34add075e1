"""Pricing on the third unseen-data round's findings (docs/status.md, seventh session): an empty
``min_margin_pct`` on any product failed the whole run; the finance mail named the vendor as typed in
the event, not as the catalogue spells it; a SKU of wide (CJK) characters pushed the mail's table out
of line."""

from __future__ import annotations

import unicodedata

import pytest

pytest.importorskip("uvicorn", reason="the sandbox needs uvicorn: pip install -e '.[demo]'")
pytest.importorskip("aiosmtpd", reason="the sandbox mailbox needs aiosmtpd: pip install -e '.[demo]'")

from podium.sandbox import Sandbox

from .test_pricing import erp_state, run, write_csv

CATALOGUE = ["sku", "vendor", "unit_cost", "list_price", "min_margin_pct", "channels"]
ORDERS = ["po_id", "sku", "qty", "unit_cost", "status"]


@pytest.fixture
def company(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    with Sandbox(tmp_path / "company") as sandbox:
        yield sandbox


async def test_a_product_with_no_minimum_margin_is_reported_not_judged_and_the_run_goes_on(company, tmp_path):
    """Before: ``c.csv:3: column min_margin_pct is empty`` failed the run, even for another vendor's product."""
    catalogue = write_csv(tmp_path / "c.csv", CATALOGUE, [
        ["A", "v", 90, 100, 20, "web"],   # under 20% after +5%
        ["B", "v", 95, 100, "", "web"],   # no minimum given: updated, not judged
        ["C", "w", 10, 100, "", "web"],   # another vendor's, no minimum: not looked at
    ])
    orders = write_csv(tmp_path / "o.csv", ORDERS, [["P1", "A", 5, 90, "open"], ["P2", "B", 5, 95, "open"]])
    out = await run(company, tmp_path, {"vendor": "v", "change_pct": 5, "effective": "2027-01-01",
                                        "catalogue": catalogue, "purchase_orders": orders})
    assert out["applied"] and out["below_margin_skus"] == ["A"] and out["flagged_pos"] == ["P1"]
    assert out["no_min_margin_skus"] == ["B"]
    b = {s["sku"]: s for s in out["skus"]}["B"]
    assert b["below_margin"] is None and b["price_for_min_margin"] is None and b["new_margin_pct"] == pytest.approx(0.25)
    products, flags, _ = await erp_state(company)
    assert products["B"]["unit_cost"] == pytest.approx(99.75) and flags.get("P2") is None
    [mail] = company.mails()
    assert "No minimum margin in the catalogue (min_margin_pct empty; margin not judged" in mail["body"]
    assert "B." in mail["body"]


async def test_the_mail_names_the_vendor_as_the_catalogue_spells_it(company, tmp_path):
    """Before: the subject, the opening and each flagged PO's reason said ``nordlicht,  gmbh``, as typed."""
    catalogue = write_csv(tmp_path / "c.csv", CATALOGUE, [
        ["N-1", "Nordlicht, GmbH", 90, 100, 20, "web"], ["N-2", "Nordlicht, GmbH", 10, 100, 20, "web"]])
    orders = write_csv(tmp_path / "o.csv", ORDERS, [["P1", "N-1", 5, 90, "open"]])
    out = await run(company, tmp_path, {"vendor": "nordlicht,  gmbh", "change_pct": " 14 %", "effective": "2027-01-01",
                                        "catalogue": catalogue, "purchase_orders": orders})
    assert out["vendor"] == "Nordlicht, GmbH" and out["flagged_pos"] == ["P1"]
    [mail] = company.mails()
    assert mail["subject"].startswith("Nordlicht, GmbH +14% from 2027-01-01")
    assert "nordlicht,  gmbh" not in mail["body"] and "product(s) of Nordlicht, GmbH now cost" in mail["body"]
    _, flags, _ = await erp_state(company)
    assert "(Nordlicht, GmbH +14% from 2027-01-01)" in (flags["P1"] or "")


def _columns(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


async def test_wide_skus_keep_the_mail_table_in_line(company, tmp_path):
    """Before: ``大月-001`` took 10 characters but 14 columns, so its row's figures stood 4 columns right."""
    catalogue = write_csv(tmp_path / "c.csv", CATALOGUE, [
        ["大月-001", "大月 Gear", 90, 100, 20, "web"], ["AB-1", "大月 Gear", 95, 100, 20, "web"],
        ["大月大月大月大月-2", "大月 Gear", 91, 100, 20, "web"]])
    orders = write_csv(tmp_path / "o.csv", ORDERS, [["P1", "大月-001", 5, 90, "open"], ["P2", "AB-1", 5, 95, "open"]])
    await run(company, tmp_path, {"vendor": "大月 GEAR", "change_pct": 5, "effective": "2027-01-01",
                                  "catalogue": catalogue, "purchase_orders": orders})
    [mail] = company.mails()
    body = mail["body"].replace("\r\n", "\n").split("\n")
    start = body.index("Below their minimum margin at the new cost:") + 1
    table = body[start:start + 4]
    ends = {_columns(line[:line.index(" cost" if i == 0 else f"{cost:.2f}")]) + (5 if i == 0 else len(f"{cost:.2f}"))
            for i, (line, cost) in enumerate(zip(table, [0, 90, 95, 91], strict=True))}
    assert len(ends) == 1, table  # the cost column ends in the same column on every line
    pos = body[body.index("Open purchase orders flagged in the ERP:") + 1:][:2]
    assert len({_columns(line[:line.index(" qty")]) for line in pos}) == 1, pos


async def test_a_partially_received_purchase_order_is_flagged_as_an_open_one(company, tmp_path):
    """Before: only ``open`` was flagged; a ``partially received`` PO of a product now below margin,
    whose remaining units still arrive (and are invoiced) at the new cost, was listed among the POs
    not flagged, and finance never looked at it. Received, cancelled, draft and held ones stay unflagged."""
    catalogue = write_csv(tmp_path / "c.csv", CATALOGUE, [["A", "v", 90, 100, 20, "web"]])
    statuses = {"P1": "open", "P2": "partially received", "P3": "Partially_Received", "P4": "partially-received",
                "P5": "received", "P6": "cancelled", "P7": "draft", "P8": "on hold"}
    orders = write_csv(tmp_path / "o.csv", ORDERS, [[po, "A", 5, 90, st] for po, st in statuses.items()])
    out = await run(company, tmp_path, {"vendor": "v", "change_pct": 5, "effective": "2027-01-01",
                                        "catalogue": catalogue, "purchase_orders": orders})
    assert out["flagged_pos"] == ["P1", "P2", "P3", "P4"], out["flagged_pos"]
    assert out["below_margin_not_open_pos"] == ["P5", "P6", "P7", "P8"]
    _, flags, _ = await erp_state(company)
    assert sorted(p for p in flags if p in statuses) == ["P1", "P2", "P3", "P4"]
    # the mail's qty is what was ordered: a partly received PO says so (before, "qty 5" read as 5 to come)
    body = company.mails()[-1]["body"].replace("\r\n", "\n").split("\n")
    lines = {line.split()[0]: line for line in body[body.index("Open purchase orders flagged in the ERP:") + 1:][:4]}
    assert lines["P1"].endswith("qty 5 at 90.00"), lines
    assert all(lines[p].endswith("qty 5 at 90.00 (partially received: qty ordered)") for p in ("P2", "P3", "P4")), lines
