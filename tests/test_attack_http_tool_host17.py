"""An ``HttpTool`` built in Python (not from the capability registry) took a placeholder next to its
host: ``https://{tenant}.example.com/x`` or ``https://api.example.com{path}`` let an argument (a
model's tool call) choose the host, where the registry refuses such a URL. The constructor applies
the registry's check now (the same function), so both refuse it alike."""

from __future__ import annotations

import pytest

from podium import ConfigError
from podium.governance.capabilities import make_capability
from podium.tools.http import HttpTool

HOSTILE = [
    "https://{tenant}.example.com/orders",
    "https://api.example.com{path}",
    "https://api.example.com:{port}/x",
    "http://{host}/x",
    "{scheme}://api.example.com/x",
    "/orders/{id}",
]


@pytest.mark.parametrize("url", HOSTILE)
def test_attack_a_python_built_http_tool_lets_an_argument_choose_the_host(url: str) -> None:
    with pytest.raises(ConfigError) as built:
        HttpTool("orders", url, method="GET")
    with pytest.raises(ConfigError) as registered:
        make_capability("orders", "http", {"url": url})
    assert str(built.value).split(repr(url))[-1] == str(registered.value).split(repr(url))[-1]  # the same check
    if "{" in url.partition("://")[2].partition("/")[0]:
        assert "placeholder in its host" in str(built.value), built.value
    assert "http tool 'orders'" in str(built.value)


def test_placeholders_in_the_path_and_query_are_taken() -> None:
    tool = HttpTool("orders", "https://api.example.com/orders/{order_id}?region={region}", method="GET")
    assert tool.expand({"order_id": "a/b", "region": "eu"}) == "https://api.example.com/orders/a%2Fb?region=eu"
