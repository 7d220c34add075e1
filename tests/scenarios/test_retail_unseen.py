"""The retail files (pricing, recommend) as another system exports them: the documented column names
capitalised, a UTF-8 byte-order mark, CRLF; and a catalogue with no product is an error, not a run
that says the vendor is missing from "its vendors: " (none)."""

from __future__ import annotations

import pytest

from podium import ConfigError


def test_capitalised_headers_with_bom_and_crlf_are_read(tmp_path):
    from examples.scenarios._retail import read_catalogue, read_purchase_orders

    cat = tmp_path / "catalogue.csv"
    cat.write_bytes("\ufeffChannels,SKU,Vendor,Unit_Cost,List_Price,Min_Margin_Pct,Bemerkung\r\n"
                    '"web shop;store-Zürich",ÖL/1,"Fjell, AS",12.5,20,40,"zwei\r\nZeilen"\r\n'.encode())
    po = tmp_path / "po.csv"
    po.write_bytes("PO_ID,Sku,Qty,Unit_Cost,Status\r\nBE-1,ÖL/1,3,12.5,Open\r\n".encode())
    products = read_catalogue(str(cat))
    assert products["ÖL/1"]["vendor"] == "Fjell, AS" and products["ÖL/1"]["channels"] == ["web shop", "store-Zürich"]
    assert [p["po_id"] for p in read_purchase_orders(str(po))] == ["BE-1"]


def test_a_catalogue_with_only_a_header_is_a_clear_error(tmp_path):
    from examples.scenarios._retail import read_catalogue

    cat = tmp_path / "catalogue.csv"
    cat.write_text("sku,vendor,unit_cost,list_price,min_margin_pct,channels\r\n")
    with pytest.raises(ConfigError, match=r"catalogue.csv: no products \(only a header\)"):
        read_catalogue(str(cat))
