"""Operations (tenth session): every JSON request body of the API refuses a field it does not have,
naming it (422), instead of dropping it. The start, fork, signal, decision, switch and goal bodies
did already; the memory, relation, document and event-batch bodies dropped a mistyped field
(`{"text": ..., "metdata": {...}}` remembered the text without its metadata).

Walked over every mutating route with a sample body (tests/server/test_api_auth.py's), so a new
route's body is covered without touching this file."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from . import flows
from .test_api_auth import BODIES, api_routes, concrete

#: Bodies that are the caller's data, any shape: a webhook's payload and an event's payload.
FREE = {
    ("POST", "/hooks/{path:path}"),
    ("PUT", "/hooks/{path:path}"),
    ("PATCH", "/hooks/{path:path}"),
    ("POST", "/api/events/{event_type}"),
}


def _with_typo(route: tuple[str, str], body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The body with one unknown field, and where the answer must say it is."""
    wrong = copy.deepcopy(body)
    if route == ("POST", "/api/events"):  # the batch's events are bodies of their own
        wrong["events"][0]["idempotency_kee"] = "k2"
        return wrong, "idempotency_kee"
    wrong["unknwn"] = 1
    return wrong, "unknwn"


async def test_every_json_body_names_a_field_it_does_not_have(server: Any) -> None:
    async with server("memory://", workflows=flows.ALL) as (app, http):
        from podium.memory import Memory, attach

        attach(app.state.client, Memory(app.state.client.store, embedder="hash:256"))
        rid = (await http.post("/api/runs", json={"workflow": "hello", "input": {"name": "x"}})).json()["run"]["id"]
        checked = []
        for route in api_routes(app):
            body = BODIES.get(route)
            if route in FREE or not isinstance(body, dict):
                continue
            method, path = route
            wrong, field = _with_typo(route, body)
            r = await http.request(method, concrete(path, rid), json=wrong)
            assert r.status_code == 422, (route, r.status_code, r.text[:300])
            message = r.json()["error"]["message"]
            assert field in message, (route, message)
            checked.append(route)
        assert ("POST", "/api/memory/{entity}") in checked and ("POST", "/api/events") in checked
        assert len(checked) >= 10, checked
        # nothing was remembered, related or ingested by the refused bodies
        assert (await http.get("/api/memory/customer:1")).json()["items"] == []
        assert (await http.get("/api/graph/a:1")).status_code == 404


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/memory/customer:1", {"text": "prefers email", "metdata": {"channel": "email"}}, "metdata"),
        ("/api/graph/relations", {"src": "a:1", "relation": "knows", "dst": "b:2", "propertes": {"w": 1}}, "propertes"),
        ("/api/kb/handbook/documents", {"source": "a.md", "text": "# Hi", "typ": "markdown"}, "typ"),
    ],
)
async def test_a_mistyped_memory_field_is_named_not_dropped(server: Any, path: str, body: dict[str, Any], field: str) -> None:
    async with server("memory://") as (app, http):
        from podium.memory import Memory, attach

        attach(app.state.client, Memory(app.state.client.store, embedder="hash:256"))
        r = await http.post(path, json=body)
        assert r.status_code == 422, r.text
        assert f"body.{field}" in r.json()["error"]["message"]

