"""Steps on Ray, run ONLY inside a network namespace that has nothing but ``lo`` (Ray binds every
address and probes the network): tests/ml/test_ray.py starts this file there. Not collected
otherwise (the name does not match test_*.py), and it refuses to run outside the namespace."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

if os.environ.get("PODIUM_TEST_NETNS") != "1":
    pytest.skip("Ray tests run only in a loopback-only namespace: run tests/ml/test_ray.py", allow_module_level=True)

from podium import Client, RunStatus
from podium.ml._ray import executor
from tests.ml.ray_flows import flaky, long, where  # by its full name: Ray workers import it too

ROOT = Path(__file__).resolve().parents[2]


async def _until(check, what: str, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_step_runs_as_a_ray_task_and_its_result_is_recorded(tmp_path):
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        out = await c.run(where, {"n": 1000})
        h = await c.history((await c.list(limit=1))[0].id)
    heavy = h.step("heavy").output
    assert heavy["sum"] == sum(i * i for i in range(1000)) and heavy["pid"] != os.getpid()
    assert h.step("also_async").output == heavy["sum"] + 1
    assert out["calls"]["engine"] == os.getpid() and out["calls"]["remote"] != os.getpid()
    assert h.step("calls/pid").output == out["calls"]["remote"]  # the ctx.call is a durable sub-step


async def test_a_failing_ray_task_raises_the_steps_own_error_and_is_retried(tmp_path):
    log = tmp_path / "attempts"
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        assert await c.run(flaky, {"log": str(log)}) == "ok"
        h = await c.history((await c.list(limit=1))[0].id)
    assert log.read_text().count("attempt") == 2
    [failure] = h.step("sometimes").errors
    assert failure["type"].endswith("ValueError") and "first attempt fails" in failure["message"]


async def test_cancelling_the_run_cancels_the_ray_task(tmp_path):
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        handle = await c.start(long, {"folder": str(tmp_path)})
        await _until((tmp_path / "started").exists, "the Ray task to start")
        await c.cancel(handle.id)
        assert (await c.get(handle.id)).status is RunStatus.CANCELLED
    assert await executor.outcome(f"{handle.id}:wait_for_go:1", timeout=60) == "cancelled"
    assert not (tmp_path / "ran").exists()


async def test_a_yaml_step_with_executor_ray_trains_on_ray(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    import podium.yaml as pyaml

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    monkeypatch.setenv("PODIUM_MLFLOW_URI", f"sqlite:///{tmp_path}/mlflow.db")
    data = ROOT / "examples" / "churn" / "data"
    wf = pyaml.load_text(
        "name: ray-train\nsteps:\n  - id: train\n    uses: train\n    executor: ray\n"
        "    with: {model: churn, target: churned, csv: train.csv, holdout_csv: holdout.csv, root: data}\n"
    )
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        await c.add_capability("data", "files", {"root": str(data)})
        out = await c.run(wf, {})
        rid = (await c.list(limit=1))[0].id
    assert out["version"] == "1" and out["metrics"]["roc_auc"] > 0.6
    actor = executor.actor()
    assert await actor.submitted.remote(f"{rid}:train/train:1")  # the training went through Ray


async def test_yaml_steps_without_ctx_render_here_and_call_on_ray(tmp_path):
    """A built-in kind and a Python function: templates render in the engine (they do not travel),
    the call runs in a Ray worker as a durable sub-step."""
    import podium.yaml as pyaml

    wf = pyaml.load_text(
        "name: yaml-on-ray\nsteps:\n  - id: a\n    uses: set\n    executor: ray\n    with: {x: '{{ input.n * 2 }}'}\n"
        "  - id: b\n    uses: tests.ml.ray_flows:heavy\n    executor: ray\n    with: {input: {n: '{{ steps.a.output.x }}'}}\n",
        base_dir=str(ROOT),
    )
    async with Client(f"sqlite:///{tmp_path}/podium.db") as c:
        out = await c.run(wf, {"n": 5})
        h = await c.history((await c.list(limit=1))[0].id)
    assert out["sum"] == sum(i * i for i in range(10)) and out["pid"] != os.getpid()
    assert h.step("a").output == {"x": 10} and h.step("b/ray").output == out


ENGINE = """
import asyncio, sys
from podium import Client
from tests.ml.ray_flows import long
async def main():
    async with Client(sys.argv[1], lease_seconds=2) as c:
        h = await c.start(long, {"folder": sys.argv[2]})
        print(h.id, flush=True)
        await c.result(h.id, timeout=600)
asyncio.run(main())
"""
RESUME = """
import asyncio, json, sys
from podium import Client
async def main():
    async with Client(sys.argv[1], lease_seconds=2) as c:
        await c.resume([sys.argv[2]])  # or the engine's own claim loop takes it once the dead lease expires
        print(json.dumps(await c.result(sys.argv[2], timeout=240)), flush=True)
asyncio.run(main())
"""
CLUSTER = """
import sys, ray
ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2, namespace="podium")
print(ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()
ray.shutdown()
"""


async def test_a_ray_result_that_finishes_while_the_engine_is_dead_is_not_lost(tmp_path):
    # The cluster asks for a token (Ray's token auth); only these three processes have it.
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **token}
    cluster = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    try:
        address = cluster.stdout.readline().strip()  # type: ignore[union-attr]
        assert address, "the Ray cluster did not start"
        env["PODIUM_RAY_ADDRESS"] = address
        db = f"sqlite:///{tmp_path}/podium.db"
        engine = subprocess.Popen([sys.executable, "-c", ENGINE, db, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True)
        rid = engine.stdout.readline().strip()  # type: ignore[union-attr]
        await _until((tmp_path / "started").exists, "the Ray task to start")
        engine.kill()  # SIGKILL: the engine dies with the step in flight on Ray
        engine.wait()
        (tmp_path / "go").touch()
        await _until((tmp_path / "ran").exists, "the Ray task to finish with no engine alive")
        resumed = subprocess.run([sys.executable, "-c", RESUME, db, rid], capture_output=True, env=env, text=True, timeout=400)
        assert resumed.returncode == 0, resumed.stderr[-5000:]
        assert json.loads(resumed.stdout.strip().splitlines()[-1]) == 42
        # The resumed engine took the finished result from Ray: the function ran once.
        assert len((tmp_path / "ran").read_text().splitlines()) == 1
    finally:
        cluster.stdin.close()  # type: ignore[union-attr]
        try:
            cluster.wait(60)
        except subprocess.TimeoutExpired:
            cluster.kill()

