"""The ERP's batch catalogue operations: what a price change writes (the product master, each sales
channel's listing, flags on purchase orders), one call per batch as real ERPs offer them.

A channel (``web``, ``marketplace``, ``retail``...) keeps its own listing of each product (cost,
price, effective date) in ``listings``; any channel name is accepted, so a catalogue of one's own
works without setting channels up first. Products and purchase orders the ERP does not know yet
are created from the batch (the run's files are the source of truth).
"""

from __future__ import annotations

import time
from typing import Any

from ._db import rows

_NUM = {"type": "number"}
_STR = {"type": "string"}
_PRODUCT = {"type": "object", "properties": {
    "sku": _STR, "vendor": _STR, "unit_cost": _NUM, "list_price": _NUM, "min_margin_pct": _NUM, "channels": _STR,
}, "required": ["sku", "unit_cost"]}
_LISTING = {"type": "object", "properties": {"sku": _STR, "unit_cost": _NUM, "list_price": _NUM},
            "required": ["sku", "unit_cost", "list_price"]}
_FLAG = {"type": "object", "properties": {
    "po_id": _STR, "sku": _STR, "qty": _NUM, "unit_cost": _NUM, "status": _STR, "reason": _STR,
}, "required": ["po_id", "sku", "reason"]}


def _bad(items: Any, need: tuple[str, ...]) -> str | None:
    if not isinstance(items, list):
        return "give a list"
    for n, item in enumerate(items):
        missing = [k for k in need if not isinstance(item, dict) or item.get(k) in (None, "")]
        if missing:
            return f"item {n} lacks {', '.join(missing)}"
    return None


def update_products(c: Any, p: Any, q: Any, b: dict[str, Any]) -> Any:
    if problem := _bad(b["products"], ("sku", "unit_cost")):
        return 422, {"error": f"products: {problem}"}
    created = []
    for item in b["products"]:
        fields = {k: item[k] for k in ("vendor", "unit_cost", "list_price", "min_margin_pct", "channels") if k in item}
        sets = ", ".join(f"{k} = ?" for k in fields)
        if not c.execute(f"UPDATE products SET {sets} WHERE sku = ?", (*fields.values(), item["sku"])).rowcount:
            c.execute(
                "INSERT INTO products (sku, name, vendor, unit_cost, list_price, min_margin_pct, channels, stock, facts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0, '')",
                (item["sku"], item["sku"], item.get("vendor"), item["unit_cost"], item.get("list_price"),
                 item.get("min_margin_pct"), item.get("channels", "")))
            created.append(item["sku"])
    return 200, {"updated": len(b["products"]), "created": created}


def publish_listings(c: Any, p: dict[str, str], q: Any, b: dict[str, Any]) -> Any:
    if problem := _bad(b["items"], ("sku", "unit_cost", "list_price")):
        return 422, {"error": f"items: {problem}"}
    now = time.time()
    c.upsert("listings", [{"channel": p["channel"], "sku": i["sku"], "unit_cost": i["unit_cost"],
                           "list_price": i["list_price"], "effective": b.get("effective"), "at": now}
                          for i in b["items"]], key=("channel", "sku"))
    return 200, {"channel": p["channel"], "published": len(b["items"]), "effective": b.get("effective")}


def list_listings(c: Any, p: dict[str, str], q: Any, b: Any) -> Any:
    return rows(c, "SELECT sku, unit_cost, list_price, effective FROM listings WHERE channel = ? ORDER BY sku",
                (p["channel"],))


def flag_orders(c: Any, p: Any, q: Any, b: dict[str, Any]) -> Any:
    if problem := _bad(b["flags"], ("po_id", "sku", "reason")):
        return 422, {"error": f"flags: {problem}"}
    for f in b["flags"]:
        c.upsert("purchase_orders", [{"po_id": f["po_id"], "sku": f["sku"], "qty": f.get("qty"),
                                      "unit_cost": f.get("unit_cost"), "status": f.get("status", "open")}],
                 key=("po_id",), replace=False)
        c.execute("UPDATE purchase_orders SET flag = ? WHERE po_id = ?", (f["reason"], f["po_id"]))
    return 201, {"flagged": [f["po_id"] for f in b["flags"]]}


def catalogue_operations(api: Any) -> None:
    """Add the batch operations to the ERP ``api`` (an ``_Api``)."""
    api.op("PATCH", "/products", "updateProducts", "Change (or create) many products' cost, price, margin floor "
           "or channels in one batch", update_products, body={"products": {"type": "array", "items": _PRODUCT}},
           required=("products",))
    api.op("PUT", "/channels/{channel}/listings", "publishListings", "Publish cost and price of products on a "
           "sales channel, from a date", publish_listings,
           body={"items": {"type": "array", "items": _LISTING}, "effective": _STR}, required=("items",))
    api.op("GET", "/channels/{channel}/listings", "listListings", "What a sales channel lists", list_listings)
    api.op("POST", "/purchase-orders/flags", "flagPurchaseOrders", "Flag many purchase orders for review (orders "
           "the ERP does not know yet are recorded)", flag_orders,
           body={"flags": {"type": "array", "items": _FLAG}}, required=("flags",))
