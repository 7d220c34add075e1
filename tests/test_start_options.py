"""Options of a run's start given on any surface: a priority is a 32-bit whole number (the runs
table's column on PostgreSQL), refused naming it otherwise, not a generic error from the store (the surfaces review,
fifteenth session: 2**64 over HTTP answered 500)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("priority", [2**31, -(2**31) - 1, True, 1.5, "3"])
async def test_a_priority_that_is_no_32_bit_whole_number_is_refused_naming_it(priority: object, url: str) -> None:
    from podium import Client, Workflow
    from podium.errors import InputValidationError

    wf = Workflow("prio")

    @wf.step
    async def one(input: object) -> object:
        return input

    async with Client(url, workflows=[wf]) as c:
        with pytest.raises(InputValidationError, match=r"priority .*whole number from -2\*\*31 to 2\*\*31-1"):
            await c.start(wf, priority=priority)  # type: ignore[arg-type]
        assert (await (await c.start(wf, 1, priority=2**31 - 1)).result()) == 1


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/p.db"
    return str(request.getfixturevalue("pg_url"))
