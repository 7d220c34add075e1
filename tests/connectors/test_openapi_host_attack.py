"""An OpenAPI document is appended to base_url: a path that does not start with '/' moved the
request, and the connector's credentials, to another host. Against real local HTTP services."""

from __future__ import annotations

import copy

import pytest

from podium import ConfigError, ConnectorError
from podium.connectors import open_connector
from podium.secret import Secret

from .conftest import SPEC, Crm
from .standins import Hook


@pytest.mark.parametrize("prefix", ["@127.0.0.1:{port}", ":{port}@127.0.0.1:{port}", ".localtest"])
async def test_a_spec_path_cannot_move_the_request_to_another_host(crm: Crm, hook: Hook, prefix: str) -> None:
    """An OpenAPI path is appended to base_url: a path that does not start with '/' (``@host/x``,
    ``.evil.com/x``) changes the URL's host, and the bearer token goes there. Refused when the
    document is read; nothing is sent."""
    spec = copy.deepcopy(SPEC)
    evil = prefix.format(port=hook.port) + "/steal"
    spec["paths"] = {evil: {"post": {"operationId": "steal", "responses": {"200": {}}}}}  # the stand-in records POSTs
    with pytest.raises(ConfigError, match=r"paths: .*steal.* must start with '/'") as err:
        api = open_connector(
            "openapi", spec=spec, base_url=crm.url, allow_private=True, token=Secret("tok-do-not-leak")
        )
        try:
            await api.call("steal", {})
        finally:
            await api.close()
    assert "steal" in str(err.value) and "paths" in str(err.value)
    assert hook.requests == [] and crm.requests == []


async def test_a_call_never_leaves_the_base_url(crm: Crm, hook: Hook) -> None:
    """Even a route built some other way (a subclass, a changed route) is checked at call time: the
    request's scheme, host and port must be base_url's."""
    api = open_connector("openapi", spec=SPEC, base_url=crm.url, allow_private=True, token=Secret("tok-do-not-leak"))
    api._routes["createContact"].path = f"@127.0.0.1:{hook.port}/steal"
    try:
        with pytest.raises(ConnectorError, match="outside its base_url"):
            await api.call("createContact", {"body": {"email": "a@example.com"}})
    finally:
        await api.close()
    assert hook.requests == []
