"""Twelfth-session review of the refusal deduplication (governance/refusals.py): one caller filling
the cap of distinct refusals held in memory must not hide another caller's refusal, nor the engine's
report of a record edited behind its back. Before the fix the cap was shared by every caller of a
client (the HTTP server's one client serves every token): past it, a later refusal of anyone was
only counted into ``more_refusals``, its actor and target in no entry once the sample was full."""

from __future__ import annotations

from typing import Any

import pytest

from podium import Client, PermissionDenied, open_store
from podium.governance.identity import Principal

CAP = 10


@pytest.fixture
def shared(store_url: str) -> Any:
    return open_store(store_url) if store_url.startswith("memory") else store_url


async def test_attack_one_caller_filling_the_cap_does_not_hide_another_callers_refusal(
    shared: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_AUDIT_REFUSAL_KEYS", str(CAP))
    async with Client(shared, recover=False) as server:
        gov = server.governance
        mallory = Principal(name="mallory", roles=("viewer",), permissions=frozenset({"runs.read"}))
        bob = Principal(name="bob", roles=("viewer",), permissions=frozenset({"runs.read"}))
        for i in range(CAP + 20):  # the cap, the marked one, a full sample and more
            with gov.acting_as(mallory), pytest.raises(PermissionDenied):
                await gov.authorize("users.manage", f"user:eve{i}")
        with gov.acting_as(bob), pytest.raises(PermissionDenied):
            await gov.authorize("secrets.manage", "secret:payroll")
        # a record edited behind the engine's back, reported while mallory's flood is held
        await gov.record("access.denied", "filedrop:r1", actor="engine", reason="record not backed by the audit log",
                         problem="file mark of run r1 forged")  # fmt: skip
        denied = [e for e in await server.audit_log(limit=10_000) if e.action == "access.denied"]
        assert [e.target for e in denied if e.actor == "bob"] == ["secret:payroll"]
        engine = [e.details() for e in denied if e.target == "filedrop:r1"]
        assert [d["problem"] for d in engine] == ["file mark of run r1 forged"]
        assert sum(e.actor == "mallory" for e in denied) == CAP + 1  # mallory's own flood is still capped
    async with Client(shared, recover=False) as admin:
        denied = [e for e in await admin.audit_log(limit=10_000) if e.action == "access.denied"]
        more = [e.details() for e in denied if "more_refusals" in e.details()]
        assert [m["more_refusals"] for m in more] == [20 - 1]
        assert all(s["actor"] == "mallory" for m in more for s in m["sample"])
        assert (await admin.verify_audit())[1] is None
