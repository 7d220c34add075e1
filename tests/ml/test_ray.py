"""The Ray executor, with every packet on loopback: Ray binds all addresses and probes the network,
so its tests (tests/ml/ray_inside.py) run in a fresh network namespace that has only ``lo``; where
that is impossible (not root, no iproute2, no netns support) they are skipped with the reason."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _namespace() -> str:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed: pip install 'podium[ray]'")
    if shutil.which("ip") is None:
        pytest.skip("iproute2 ('ip') is missing, so Ray cannot be kept on loopback in a network namespace")
    name = f"podium-t-{random.randrange(1 << 30)}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace ({made.stderr.strip()}): the Ray tests need one with only lo")
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    return name


def _remove(name: str) -> None:
    # Whatever still runs in the namespace was started by this test: end it by id, then drop it.
    pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


@pytest.mark.timeout(1500)
def test_ray_steps_in_a_loopback_only_namespace(tmp_path):
    name = _namespace()
    try:
        links = subprocess.run(["ip", "netns", "exec", name, "ip", "-o", "link"], capture_output=True, text=True).stdout
        assert [line.split(":")[1].strip() for line in links.splitlines()] == ["lo"], links
        # HOME: Ray keeps its cluster's auth token in ~/.ray; these clusters get their own.
        env = {**os.environ, "PODIUM_TEST_NETNS": "1", "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
        cmd = ["ip", "netns", "exec", name, sys.executable, "-m", "pytest", "tests/ml/ray_inside.py", "-q", "-x",
               "-p", "no:cacheprovider", "-o", "timeout=600"]
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1400)
        print(done.stdout[-5000:])
        assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-3000:]
        assert " passed" in done.stdout and "skipped" not in done.stdout
    finally:
        _remove(name)


def test_an_unknown_executor_is_a_clear_error():
    from podium.engine.remote import executor_named
    from podium.errors import ConfigError

    with pytest.raises(ConfigError, match="executor 'dask' is not known .*register_executor"):
        executor_named("dask")


def test_a_step_on_an_executor_keeps_its_name():
    import podium
    from podium.errors import DefinitionError

    wf = podium.Workflow("x")
    with pytest.raises(DefinitionError, match="executor must be a name like 'ray'"):
        wf.step(lambda: 1, id="a", executor="")
