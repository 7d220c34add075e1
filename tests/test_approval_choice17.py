"""One function chooses which approval request a decision naming only its run goes to
(``governance.inbox.choose``): ``podium approvals approve RUN`` and MCP ``decide_approval`` without
``name`` each had their own copy of that choice (the API always names the request, and every
surface's decision then goes through ``Governance.decide``'s ``pick``). Both call it now, and
refuse alike: several open requests and no number is refused, nothing decided."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

import podium
from podium.governance import inbox
from tests.test_approval_requests_of_one_name import _flow, _refusal_lists, _two_open


async def test_the_cli_and_mcp_choose_the_request_with_one_function(tmp_path: Path, monkeypatch: Any) -> None:
    from podium.cli._gov import _decide as cli_decide
    from podium.server.mcp_tools import DecideArgs, PodiumTools

    calls: list[tuple[str, int | None]] = []
    real = inbox.choose

    async def spy(page: Any, run_id: str, request: int | None) -> tuple[str, int | None]:
        calls.append((run_id, request))
        return await real(page, run_id, request)

    monkeypatch.setattr(inbox, "choose", spy)
    db = f"sqlite:///{tmp_path}/p.db"
    async with podium.Client(db, workflows=[_flow()]) as c:
        rid, asked = await _two_open(c)
        with pytest.raises(podium.ConfigError) as by_mcp:
            await PodiumTools(c)._decide(DecideArgs(run_id=rid, approve=True, wait_seconds=0))
        _refusal_lists(str(by_mcp.value), asked)
    with pytest.raises((podium.ConfigError, click.UsageError)) as by_cli:
        await cli_decide(rid, None, True, "", None, db)
    assert str(by_cli.value) == str(by_mcp.value)  # one message, from one function
    assert calls == [(rid, None), (rid, None)]
    async with podium.Client(db, workflows=[_flow()]) as c:
        assert len(await c.approvals(run_id=rid)) == 2  # nothing decided
        got = await PodiumTools(c)._decide(DecideArgs(run_id=rid, approve=False, request=asked[1]["seq"], wait_seconds=0))
        assert got["decided"] is True
        assert calls[-1] == (rid, asked[1]["seq"])
        assert [a["seq"] for a in await c.approvals(run_id=rid)] == [asked[0]["seq"]]


async def test_choose_takes_the_only_open_request_bound_to_its_number() -> None:
    one = [{"run_id": "r", "name": "approval:pay", "seq": 7}]
    two = [*one, {"run_id": "r", "name": "approval:ship", "seq": 9}]

    async def pages(found: list[dict[str, Any]]) -> Any:
        async def page(limit: int, after: Any) -> list[dict[str, Any]]:
            return found if after is None else []

        return page

    assert await inbox.choose(await pages(one), "r", None) == ("approval:pay", 7)
    assert await inbox.choose(await pages(two), "r", 9) == ("approval:ship", 9)
    with pytest.raises(podium.ConfigError, match="has 2 open approval requests"):
        await inbox.choose(await pages(two), "r", None)
    with pytest.raises(podium.NotFound, match="has no open approval request"):
        await inbox.choose(await pages([]), "r", None)
