"""The eleventh review (2026-12-07): growing the audit log by being refused.

Every refusal was an ``access.denied`` entry of its own: whoever holds a token that is refused (a
viewer asking for what it may not do, a token whose row the log does not back), or repeats any
refused request, added one signed entry per attempt, at the rate the API answered. The first
refusal of each kind is still written at once; repeats within a window are counted in memory and
written as one summary when the window closes or the client closes; past a cap of distinct kinds,
refusals are aggregated into one entry. Each test counted one entry per attempt before the fix
(docs/status.md, "Refusals flooding the audit log (eleventh session)")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from podium import AuthError, Client, PermissionDenied, open_store
from podium.governance.identity import Principal

ATTEMPTS = 500


@pytest.fixture
def shared(store_url: str) -> Any:
    return open_store(store_url) if store_url.startswith("memory") else store_url


async def _root(store: Any) -> tuple[str, str]:
    """An admin's token and a viewer's (mallory)."""
    async with Client(store, recover=False) as local:
        await local.create_user("root", ["admin"])
        root = await local.create_token("root")
    async with Client(store, token=root, recover=False) as admin:
        await admin.create_user("mallory", ["viewer"])
        mallory = await admin.create_token("mallory")
    return root, mallory


def _denied(entries: list[Any]) -> list[Any]:
    return [e for e in entries if e.action == "access.denied"]


async def test_attack_500_refusals_of_one_request_write_one_entry_then_one_summary(shared: Any) -> None:
    """Mallory, a viewer, asks 500 times to create a user: 500 entries before; now the first at
    once, and on close one summary that counts the 499 others (nothing lost), the chain intact."""
    root, mallory = await _root(shared)
    async with Client(shared, token=mallory, recover=False) as c:
        for _ in range(ATTEMPTS):
            with pytest.raises(PermissionDenied, match="may not users.manage"):
                await c.create_user("eve", ["admin"])
        async with Client(shared, token=root, recover=False) as admin:
            denied = _denied(await admin.audit_log(limit=10_000))
            assert len(denied) == 1, len(denied)  # the first, at once
            assert denied[0].actor == "mallory" and denied[0].target == "user:eve"
            assert denied[0].details()["permission"] == "users.manage"
    async with Client(shared, token=root, recover=False) as admin:
        denied = _denied(await admin.audit_log(limit=10_000))
        assert len(denied) == 2, len(denied)
        summary = denied[1].details()
        assert summary["repeated"] == ATTEMPTS - 1 and summary["permission"] == "users.manage"
        assert summary["first_at"] <= summary["last_at"] and denied[1].target == "user:eve"
        entries, problem = await admin.verify_audit()
        assert problem is None and entries > 2


async def test_attack_a_refused_token_used_500_times_writes_one_entry(shared: Any) -> None:
    """Mallory's user row is edited to say admin: her token is refused (``account:mallory``), and
    each try was one more entry."""
    root, mallory = await _root(shared)
    async with Client(shared, token=root, recover=False) as admin:
        store = admin.store
        row = await store.kv_get("users", "mallory")
        await store.kv_put("users", "mallory", json.dumps({"roles": ["admin"], "service": False, "disabled": False}))
        for _ in range(ATTEMPTS):
            with pytest.raises(AuthError, match="edited behind the admins' back"):
                await admin.authenticate(mallory)
        assert row is not None
        await store.kv_put("users", "mallory", row)  # put back, so that verify speaks of the log alone
        assert len(_denied(await admin.audit_log(limit=10_000))) == 1
    async with Client(shared, token=root, recover=False) as admin:
        denied = _denied(await admin.audit_log(limit=10_000))
        assert [e.target for e in denied] == ["account:mallory"] * 2
        assert denied[1].details()["repeated"] == ATTEMPTS - 1
        assert (await admin.verify_audit())[1] is None


async def test_attack_varying_the_target_is_capped(shared: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mallory varies the target at each try to defeat the deduplication: past the cap of distinct
    refusals held in memory, the first overflowing one is written at once (marked) and the rest
    are counted into one entry, with a sample."""
    monkeypatch.setenv("PODIUM_AUDIT_REFUSAL_KEYS", "10")
    root, mallory = await _root(shared)
    async with Client(shared, token=mallory, recover=False) as c:
        for i in range(ATTEMPTS):
            with pytest.raises(PermissionDenied):
                await c.create_user(f"eve{i}", ["admin"])
        async with Client(shared, token=root, recover=False) as admin:
            assert len(_denied(await admin.audit_log(limit=10_000))) == 11  # ten kinds, then "cap reached"
    async with Client(shared, token=root, recover=False) as admin:
        denied = _denied(await admin.audit_log(limit=10_000))
        assert len(denied) == 12, len(denied)
        assert denied[10].details()["cap_reached"] == 10 and denied[10].target == "user:eve10"
        more = denied[11].details()
        assert more["more_refusals"] == ATTEMPTS - 11 and denied[11].target == ""
        assert more["sample"][0] == {"actor": "mallory", "target": "user:eve11", "permission": "users.manage"}
        assert (await admin.verify_audit())[1] is None


async def test_a_window_closing_writes_its_summary_and_a_quiet_kind_is_written_at_once_again(
    shared: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PODIUM_AUDIT_REFUSAL_WINDOW", "60")
    root, _ = await _root(shared)
    now = [1_000_000.0]
    async with Client(shared, token=root, recover=False) as admin:
        gov = admin.governance
        gov.refusals.clock = lambda: now[0]
        viewer = Principal(name="mallory", roles=("viewer",), permissions=frozenset({"runs.read"}))

        async def refused() -> None:
            with gov.acting_as(viewer), pytest.raises(PermissionDenied):
                await gov.authorize("users.manage", "user:eve")

        async def count() -> list[dict[str, Any]]:
            return [e.details() for e in _denied(await admin.audit_log(limit=10_000))]

        for _ in range(3):
            await refused()
        now[0] += 59
        await gov.refresh()  # the engine's sweep: the window is not over
        assert len(await count()) == 1
        now[0] += 2
        await gov.refresh()
        assert [d.get("repeated") for d in await count()] == [None, 2]
        await refused()  # in the next window: counted
        now[0] += 61
        await refused()  # due, written with the one before
        assert [d.get("repeated") for d in await count()] == [None, 2, 1]
        now[0] += 61
        await gov.refresh()  # one repeat counted in the window before
        assert [d.get("repeated") for d in await count()] == [None, 2, 1, 1]
        now[0] += 61
        await gov.refresh()  # a window with none: forgotten
        await refused()  # so the next is written at once
        assert [d.get("repeated") for d in await count()] == [None, 2, 1, 1, None]


async def test_the_settings_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from podium.errors import ConfigError

    monkeypatch.setenv("PODIUM_AUDIT_REFUSAL_WINDOW", "-1")
    with pytest.raises(ConfigError, match="audit_refusal_window"):
        async with Client("memory://", recover=False):
            pass
