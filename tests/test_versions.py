"""Versioning: deploy, versions, diff, rollback; runs pinned to the version they started on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from podium import Client, NotFound, RunStatus, open_store

V1 = """
name: greeter
version: "1"
steps:
  - id: wait
    uses: sleep
    with: {seconds: 0.3}
  - id: greet
    needs: [wait]
    uses: set
    with: {text: "hello from v1"}
outputs:
  text: "{{ steps.greet.output.text }}"
"""

V2 = V1.replace("hello from v1", "hello from v2")


@pytest.fixture
def shared_store(store_url):
    return open_store(store_url) if store_url.startswith("memory") else store_url


async def test_deploy_versions_diff_rollback_and_pinning(shared_store, tmp_path: Path):
    f = tmp_path / "greeter.yaml"
    f.write_text(V1)
    async with Client(shared_store) as c:
        wf1 = await c.deploy(str(f))
        assert (wf1.name, wf1.version) == ("greeter", "1")
        assert (await c.deploy(str(f))).version == "1"  # same text: no new version
        pinned = await c.start("greeter")  # starts on the active version, 1
        await asyncio.sleep(0.05)
        f.write_text(V2)  # same declared version, other content: a new version
        wf2 = await c.deploy(str(f))
        assert wf2.version == "1.2"
        assert [v["version"] for v in await c.versions("greeter")] == ["1", "1.2"]
        assert [v["active"] for v in await c.versions("greeter")] == [False, True]
        assert (await c.result(pinned.id))["text"] == "hello from v1"  # pinned to version 1
        assert (await c.get(pinned.id)).version == "1"
        assert (await c.run("greeter"))["text"] == "hello from v2"
        d = await c.diff("greeter", "1", "1.2")
        assert "-    with: {text: \"hello from v1\"}" in d and "+    with: {text: \"hello from v2\"}" in d
        assert await c.rollback("greeter") == "1"
        assert (await c.run("greeter"))["text"] == "hello from v1"
        with pytest.raises(NotFound, match="no version '9'"):
            await c.rollback("greeter", to="9")
        actions = [e.action for e in await c.audit_log()]
        assert actions.count("workflow.deploy") == 3 and "workflow.rollback" in actions


async def test_pinned_run_resumes_with_its_stored_version_after_the_file_changed(shared_store, tmp_path: Path):
    f = tmp_path / "greeter.yaml"
    f.write_text(V1)
    c1 = Client(shared_store)
    await c1.open()
    await c1.deploy(str(f))
    handle = await c1.start("greeter")
    await asyncio.sleep(0.05)
    await c1.close()  # handed back mid-run
    f.write_text(V2)
    async with Client(shared_store, recover=False) as c2:  # a new process: knows nothing registered
        await c2.deploy(str(f))
        assert (await c2.get(handle.id)).status is RunStatus.RUNNING
        assert await c2.resume() == [handle.id]
        assert (await c2.result(handle.id))["text"] == "hello from v1"
