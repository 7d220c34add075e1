"""The sandbox company's HTTP systems: a CRM, a support desk, a marketing tool and an ERP, each a small
Starlette app with its own OpenAPI document (served at ``/openapi.json``), backed by the company's
SQL database. Workflows reach them through the ``openapi`` connector, exactly as they would reach
the real systems; nothing here is imported by a workflow. A write that is a business fact (a ticket
opened, an order created, a vendor's price change) is also published as an event (``_events.EVENTS``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from sqlalchemy.exc import DataError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._db import Database, connect, log, publish, rows

Handler = Callable[[Request, Any], Awaitable[Any]]
_RAW = "podium.raw_path"
"""Set in the ASGI scope when routes were matched on the path as it was sent (still percent-encoded)."""
_STR = {"type": "string"}
_INT = {"type": "integer"}


class _Api:
    """One system: its routes and the OpenAPI document that describes them."""

    def __init__(self, system: str, title: str, db: Database) -> None:
        self.system, self.db = system, db
        self.doc: dict[str, Any] = {
            "openapi": "3.0.3",
            "info": {"title": title, "version": "1.0"},
            "paths": {},
        }
        self.routes: list[Route] = [Route("/openapi.json", self._openapi), Route("/_received", self._received)]
        self.notify: Callable[[], None] = lambda: None
        """Called after an event is put in the outbox (the sandbox wakes its event relay)."""

    async def _openapi(self, request: Request) -> JSONResponse:
        return JSONResponse(self.doc)

    async def _received(self, request: Request) -> JSONResponse:
        with connect(self.db) as conn:
            return JSONResponse(rows(conn, "SELECT operation, body, at FROM received WHERE system = ? ORDER BY id", (self.system,)))

    def op(
        self,
        method: str,
        path: str,
        operation_id: str,
        summary: str,
        fn: Callable[..., Any],
        *,
        query: dict[str, dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None,
        required: tuple[str, ...] = (),
        event: str | None = None,
    ) -> None:
        """Add ``operation_id``: ``fn(conn, path_params, query, body)`` returns the JSON answer, or
        ``(status, answer)``. Writes are logged as received; a successful one with ``event`` also
        publishes that business event (what was sent and what was answered)."""
        params = [
            {"name": name, "in": "path", "required": True, "schema": _STR}
            for name in (p.strip("{}") for p in path.split("/") if p.startswith("{"))
        ]
        params += [{"name": k, "in": "query", "required": False, "schema": s} for k, s in (query or {}).items()]
        spec: dict[str, Any] = {"operationId": operation_id, "summary": summary, "parameters": params,
                                "responses": {"200": {"description": "OK"}, "404": {"description": "not found"}}}
        if body is not None:
            schema = {"type": "object", "properties": body, "required": list(required)}
            spec["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        self.doc["paths"].setdefault(path, {})[method.lower()] = spec
        writes = method.upper() != "GET"

        async def endpoint(request: Request) -> JSONResponse:
            payload: dict[str, Any] = {}
            if body is not None:
                try:
                    payload = json.loads(await request.body() or b"{}")
                except ValueError:
                    return JSONResponse({"error": "the body is not JSON"}, status_code=400)
                missing = [k for k in required if k not in payload]
                if not isinstance(payload, dict) or missing:
                    return JSONResponse({"error": f"missing fields: {missing}"}, status_code=422)
            given = {k: unquote(v) if request.scope.get(_RAW) else v for k, v in request.path_params.items()}
            try:
                with connect(self.db) as conn:
                    answer = fn(conn, given, dict(request.query_params), payload)
                    status, answer = answer if isinstance(answer, tuple) else (200, answer)
                    if writes and status < 300:
                        log(conn, self.system, operation_id, {**given, **payload})
                        if event is not None:
                            publish(conn, self.system, event, {**given, **payload, **answer})
            except DataError as exc:  # PostgreSQL and MariaDB check types that SQLite takes as they come
                why = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "wrong type"
                return JSONResponse({"error": f"a value does not fit its column: {why}"}, status_code=422)
            if event is not None and status < 300:
                self.notify()
            return JSONResponse(answer, status_code=status)

        self.routes.append(Route(path, endpoint, methods=[method.upper()]))

    def app(self) -> Any:
        return _RawPath(Starlette(routes=self.routes))


class _RawPath:
    """Routes matched on the path as the client sent it, each parameter decoded after: a channel
    ``ebay/outlet`` or a customer ``K/001`` arrives as ``ebay%2Foutlet``, which the server would
    otherwise decode into two path segments before routing (HTTP 404, a run failed half-applied)."""

    def __init__(self, app: Any) -> None:
        self.inner = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            scope = {**scope, "path": raw.decode("latin-1").partition("?")[0], _RAW: True}
        await self.inner(scope, receive, send)


def _where(query: dict[str, str], column: str) -> str:
    """An optional equality filter on ``column`` (a fixed name), when the query gives it."""
    return f"WHERE {column} = ?" if query.get(column) is not None else ""


def _values(query: dict[str, str], column: str) -> tuple[Any, ...]:
    return (query[column],) if query.get(column) is not None else ()


def _one(conn: Any, sql: str, params: tuple[Any, ...], what: str) -> Any:
    found = rows(conn, sql, params)
    return found[0] if found else (404, {"error": f"no {what} {params[0]!r}"})


def crm(db: Database) -> _Api:
    api = _Api("crm", "Northwind CRM", db)
    from ._undo import crm_undo  # what compensation calls (the churn scenario)

    crm_undo(api)
    api.op("GET", "/customers", "listCustomers", "All customers",
           lambda c, p, q, b: rows(c, "SELECT * FROM customers ORDER BY id"))
    api.op("GET", "/customers/{customer_id}", "getCustomer", "One customer",
           lambda c, p, q, b: _one(c, "SELECT * FROM customers WHERE id = ?", (p["customer_id"],), "customer"))
    api.op("GET", "/customers/{customer_id}/interactions", "listInteractions", "A customer's history, newest first",
           lambda c, p, q, b: rows(c, "SELECT at, channel, text FROM interactions WHERE customer_id = ? ORDER BY at DESC", (p["customer_id"],)))

    def task(c: Any, p: dict[str, str], q: Any, b: dict[str, Any]) -> Any:
        task_id = c.insert("tasks", {"customer_id": p["customer_id"], "title": b["title"], "due": b.get("due"),
                                     "owner": b.get("owner", "account-team")})
        return 201, {"task_id": task_id}

    api.op("POST", "/customers/{customer_id}/tasks", "createTask", "A follow-up task for a person", task,
           body={"title": _STR, "due": _STR, "owner": _STR}, required=("title",), event="task.created")
    return api


def support_desk(db: Database) -> _Api:
    api = _Api("support_desk", "Northwind Support Desk", db)
    from ._undo import support_desk_undo  # what compensation calls (the churn scenario)

    support_desk_undo(api)

    def create(c: Any, p: Any, q: Any, b: dict[str, Any]) -> Any:
        ticket_id = c.insert("tickets", {"customer_id": b["customer_id"], "message": b["message"], "status": "open",
                                         "priority": b.get("priority", "normal"), "created_at": time.time()})
        return 201, {"ticket_id": ticket_id, "status": "open"}

    def reply(c: Any, p: dict[str, str], q: Any, b: dict[str, Any]) -> Any:
        if not rows(c, "SELECT id FROM tickets WHERE id = ?", (p["ticket_id"],)):
            return 404, {"error": f"no ticket {p['ticket_id']!r}"}
        reply_id = c.insert("replies", {"ticket_id": int(p["ticket_id"]), "text": b["text"],
                                        "author": b.get("author", "podium"), "at": time.time()})
        c.execute("UPDATE tickets SET status = 'answered', intent = ? WHERE id = ?", (b.get("intent"), p["ticket_id"]))
        return 201, {"reply_id": reply_id, "status": "answered"}

    def escalate(c: Any, p: dict[str, str], q: Any, b: dict[str, Any]) -> Any:
        n = c.execute("UPDATE tickets SET status = 'escalated', intent = ?, priority = 'high' WHERE id = ?",
                      (b.get("intent"), p["ticket_id"])).rowcount
        return (201, {"status": "escalated", "queue": b.get("queue", "humans")}) if n else (404, {"error": "no such ticket"})

    api.op("POST", "/tickets", "createTicket", "Open a ticket", create,
           body={"customer_id": _STR, "message": _STR, "priority": _STR}, required=("customer_id", "message"),
           event="ticket.opened")
    api.op("GET", "/tickets", "listTickets", "Tickets, newest first", lambda c, p, q, b: rows(
        c, f"SELECT * FROM tickets {_where(q, 'status')} ORDER BY id DESC", _values(q, 'status')), query={"status": _STR})
    api.op("GET", "/tickets/{ticket_id}", "getTicket", "A ticket and its replies", lambda c, p, q, b: (
        {**t, "replies": rows(c, "SELECT text, author, at FROM replies WHERE ticket_id = ?", (p["ticket_id"],))}
        if (t := _one(c, "SELECT * FROM tickets WHERE id = ?", (p["ticket_id"],), "ticket")) and isinstance(t, dict) else t))
    api.op("POST", "/tickets/{ticket_id}/replies", "replyToTicket", "Send a reply to the customer", reply,
           body={"text": _STR, "author": _STR, "intent": _STR}, required=("text",), event="ticket.answered")
    api.op("POST", "/tickets/{ticket_id}/escalations", "escalateTicket", "Hand the ticket to a person", escalate,
           body={"reason": _STR, "queue": _STR, "intent": _STR}, required=("reason",), event="ticket.escalated")
    return api


def marketing(db: Database) -> _Api:
    api = _Api("marketing", "Northwind Marketing", db)
    from ._undo import marketing_undo  # what compensation calls (the churn scenario)

    marketing_undo(api)
    api.op("GET", "/campaigns", "listCampaigns", "Campaigns", lambda c, p, q, b: rows(c, "SELECT * FROM campaigns"))

    def enrol(c: Any, p: dict[str, str], q: Any, b: dict[str, Any]) -> Any:
        if not rows(c, "SELECT id FROM campaigns WHERE id = ?", (p["campaign_id"],)):
            return 404, {"error": f"no campaign {p['campaign_id']!r}"}
        c.upsert("campaign_members", [{"campaign_id": p["campaign_id"], "customer_id": b["customer_id"],
                                       "note": b.get("note")}], key=("campaign_id", "customer_id"))
        return 201, {"enrolled": b["customer_id"], "campaign": p["campaign_id"]}

    api.op("POST", "/campaigns/{campaign_id}/members", "addToCampaign", "Enrol a customer in a campaign", enrol,
           body={"customer_id": _STR, "note": _STR}, required=("customer_id",), event="campaign.joined")
    api.op("GET", "/campaigns/{campaign_id}/members", "listCampaignMembers", "Who a campaign reaches",
           lambda c, p, q, b: rows(c, "SELECT customer_id, note FROM campaign_members WHERE campaign_id = ?", (p["campaign_id"],)))
    return api


def erp(db: Database) -> _Api:
    api = _Api("erp", "Northwind ERP (catalogue and purchase orders)", db)
    from ._catalogue import catalogue_operations  # the batch operations a price change uses

    catalogue_operations(api)
    api.op("GET", "/products", "listProducts", "The catalogue", lambda c, p, q, b: rows(
        c, f"SELECT * FROM products {_where(q, 'vendor')} ORDER BY sku", _values(q, 'vendor')), query={"vendor": _STR})
    api.op("GET", "/products/{sku}", "getProduct", "One product",
           lambda c, p, q, b: _one(c, "SELECT * FROM products WHERE sku = ?", (p["sku"],), "product"))

    def update(c: Any, p: dict[str, str], q: Any, b: dict[str, Any]) -> Any:
        fields = {k: v for k, v in b.items() if k in ("unit_cost", "list_price", "channels", "stock")}
        if not fields:
            return 422, {"error": "nothing to update: give unit_cost, list_price, channels or stock"}
        n = c.execute(f"UPDATE products SET {', '.join(f'{k} = ?' for k in fields)} WHERE sku = ?",
                      (*fields.values(), p["sku"])).rowcount
        return (200, {"updated": p["sku"], **fields}) if n else (404, {"error": f"no product {p['sku']!r}"})

    api.op("PATCH", "/products/{sku}", "updateProduct", "Change a product's cost, price, channels or stock", update,
           body={"unit_cost": {"type": "number"}, "list_price": {"type": "number"}, "channels": _STR, "stock": _INT})
    api.op("GET", "/purchase-orders", "listPurchaseOrders", "Purchase orders", lambda c, p, q, b: rows(
        c, f"SELECT * FROM purchase_orders {_where(q, 'status')} ORDER BY po_id", _values(q, 'status')),
        query={"status": _STR})

    def flag(c: Any, p: dict[str, str], q: Any, b: dict[str, Any]) -> Any:
        n = c.execute("UPDATE purchase_orders SET flag = ? WHERE po_id = ?", (b["reason"], p["po_id"])).rowcount
        return (201, {"flagged": p["po_id"]}) if n else (404, {"error": f"no purchase order {p['po_id']!r}"})

    api.op("POST", "/purchase-orders/{po_id}/flags", "flagPurchaseOrder", "Flag a purchase order for review", flag,
           body={"reason": _STR}, required=("reason",), event="po.flagged")

    def order(c: Any, p: Any, q: Any, b: dict[str, Any]) -> Any:
        qty = b["qty"]
        if not isinstance(qty, int) or qty < 1:
            return 422, {"error": f"qty must be a whole number of at least 1, not {qty!r}"}
        found = rows(c, "SELECT list_price, stock FROM products WHERE sku = ?", (b["sku"],))
        if not found:
            return 404, {"error": f"no product {b['sku']!r}"}
        if found[0]["stock"] < qty:
            return 409, {"error": f"only {found[0]['stock']} of {b['sku']!r} in stock"}
        amount = round(qty * found[0]["list_price"], 2)
        c.execute("UPDATE products SET stock = stock - ? WHERE sku = ?", (qty, b["sku"]))
        order_id = c.insert("orders", {"customer_id": b["customer_id"], "sku": b["sku"], "qty": qty, "amount": amount,
                                       "at": time.time()})
        return 201, {"order_id": order_id, "amount": amount}

    api.op("POST", "/orders", "createOrder", "Order a product for a customer (published as order.created)", order,
           body={"customer_id": _STR, "sku": _STR, "qty": _INT}, required=("customer_id", "sku", "qty"),
           event="order.created")

    def price_change(c: Any, p: Any, q: Any, b: dict[str, Any]) -> Any:
        skus = [r["sku"] for r in rows(c, "SELECT sku FROM products WHERE vendor = ? ORDER BY sku", (b["vendor"],))]
        if not skus:
            return 404, {"error": f"no product from vendor {b['vendor']!r}"}
        if not isinstance(b["change_pct"], int | float):
            return 422, {"error": f"change_pct must be a number, not {b['change_pct']!r}"}
        return 201, {"skus": skus}

    api.op("POST", "/price-changes", "announcePriceChange",
           "A vendor's price change, as the vendor announced it (published as price.changed)", price_change,
           body={"vendor": _STR, "change_pct": {"type": "number"}, "effective": _STR},
           required=("vendor", "change_pct"), event="price.changed")
    return api


def mailbox(db: Database) -> _Api:
    """The finance mailbox's reading side: what the SMTP server received."""
    api = _Api("mailbox", "Northwind finance mailbox", db)
    api.op("GET", "/messages", "listMessages", "Received mail, newest first", lambda c, p, q, b: rows(
        c, "SELECT id, sender, recipients, subject, body, message_id, at FROM mails ORDER BY id DESC"))
    return api


#: Every HTTP system of the sandbox: name -> factory.
SYSTEMS: dict[str, Callable[[Database], _Api]] = {
    "crm": crm, "support_desk": support_desk, "marketing": marketing, "erp": erp, "mailbox": mailbox,
}
