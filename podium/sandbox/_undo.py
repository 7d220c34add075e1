"""The undo half of the sandbox systems' writes, as compensation needs it (``podium.ml.act`` in the
``churn`` scenario): withdraw a CRM task, cancel a ticket or change its priority, take a customer out
of a campaign. Each is an operation of the system's own OpenAPI document, like any other."""

from __future__ import annotations

from typing import Any

from ._db import rows

_STR = {"type": "string"}


def crm_undo(api: Any) -> None:
    api.op("GET", "/customers/{customer_id}/tasks", "listTasks", "A customer's open tasks", lambda c, p, q, b: rows(
        c, "SELECT id AS task_id, title, due, owner FROM tasks WHERE customer_id = ? ORDER BY id", (p["customer_id"],)))

    def drop(c: Any, p: dict[str, str], q: Any, b: Any) -> Any:
        n = c.execute("DELETE FROM tasks WHERE id = ? AND customer_id = ?", (p["task_id"], p["customer_id"])).rowcount
        return {"deleted": int(p["task_id"])} if n else (404, {"error": f"no task {p['task_id']!r}"})

    api.op("DELETE", "/customers/{customer_id}/tasks/{task_id}", "deleteTask", "Withdraw a task (undo)", drop)


def support_desk_undo(api: Any) -> None:
    def update(c: Any, p: dict[str, str], q: Any, b: dict[str, Any]) -> Any:
        fields = {k: v for k, v in b.items() if k in ("status", "priority")}
        if not fields:
            return 422, {"error": "nothing to update: give status or priority"}
        n = c.execute(f"UPDATE tickets SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?",
                      (*fields.values(), p["ticket_id"])).rowcount
        return (200, {"ticket_id": int(p["ticket_id"]), **fields}) if n else (404, {"error": f"no ticket {p['ticket_id']!r}"})

    api.op("PATCH", "/tickets/{ticket_id}", "updateTicket", "Change a ticket's status or priority (cancelled: undo)",
           update, body={"status": _STR, "priority": _STR})


def marketing_undo(api: Any) -> None:
    def leave(c: Any, p: dict[str, str], q: Any, b: Any) -> Any:
        n = c.execute("DELETE FROM campaign_members WHERE campaign_id = ? AND customer_id = ?",
                      (p["campaign_id"], p["customer_id"])).rowcount
        return {"removed": p["customer_id"]} if n else (404, {"error": f"{p['customer_id']!r} is not in {p['campaign_id']!r}"})

    api.op("DELETE", "/campaigns/{campaign_id}/members/{customer_id}", "removeFromCampaign",
           "Take a customer out of a campaign (undo)", leave)
