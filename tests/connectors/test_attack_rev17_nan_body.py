"""Attacker's review of untrusted inputs (seventeenth session): a connector call whose arguments
hold NaN (a step's output, a model's answer, a database row). httpx refuses to write NaN into a JSON
body (it is not JSON), and that ``ValueError`` counted against the connector's circuit breaker as
if the system were down: a few such calls from one run stopped the connector for every run of the
process. It is now refused before anything is sent, naming the operation and the argument, and the
breaker stays closed."""

from __future__ import annotations

import math

import pytest

from podium import ConnectorError
from podium.connectors import open_connector

from .conftest import SPEC, Crm


@pytest.mark.parametrize("value", [math.nan, math.inf, [1.0, -math.inf]], ids=["nan", "inf", "nested"])
async def test_attack_a_nan_argument_opens_the_breaker_for_every_run(crm: Crm, value: object) -> None:
    api = open_connector("openapi", spec=SPEC, base_url=crm.url, allow_private=True)
    try:
        for _ in range(api.breaker_policy.failures + 2):
            with pytest.raises(ConnectorError) as err:
                await api.guarded_call("createContact", {"body": {"email": "a@example.com", "score": value}})
            assert not err.value.retryable
            assert "createContact" in str(err.value) and "score" in str(err.value), str(err.value)
        assert api.breaker.state == "closed"  # before: open, every run's calls failed fast
        assert await api.guarded_call("createContact", {"body": {"email": "b@example.com", "name": "B"}})
    finally:
        await api.close()
    assert len(crm.requests) == 1
