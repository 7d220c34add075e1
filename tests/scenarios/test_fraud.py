"""The fraud scenario end to end on embedded defaults: train on the shipped history, score the sample
batch, a person reviews the grey zone through a real approval; and its quality on the held-out set."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the fraud scenario needs the ml extra: pip install 'podium[ml]'")

from podium import Client, RunFailed, RunStatus

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "scenarios" / "data"


async def _decide(c: Client, run_id: str, **decision) -> dict | None:
    """Wait until the run parks on its review (or ends), then decide the review if there is one."""
    for _ in range(12000):
        status = (await c.get(run_id)).status
        if status is RunStatus.WAITING:
            [req] = await c.approvals(run_id=run_id)
            await c.decide(run_id, req["name"], **decision)
            return req
        if status not in (RunStatus.PENDING, RunStatus.RUNNING):
            return None
        await asyncio.sleep(0.05)
    raise AssertionError("the run neither parked nor ended")


async def test_sample_batch_is_scored_and_the_grey_zone_goes_to_a_person(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import fraud

    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        handle = await c.start(fraud.workflow, {k: str(ROOT / v) for k, v in fraud.SAMPLE_INPUT.items()})
        req = await _decide(c, handle.id, approve=True, comment="checked", payload=None)
        out = await c.result(handle.id, timeout=600)
    txs = {t["tx_id"]: t for t in out["transactions"]}
    assert len(txs) == 16 and all(t["decision"] in ("approve", "block") and 0 <= t["risk"] <= 1 for t in txs.values())
    # the last four of the sample are the fraudulent ones (make_fraud_data.py): none is approved unseen
    for tx_id in ("T020012", "T020013", "T020014", "T020015"):
        assert txs[tx_id]["first_decision"] in ("block", "review"), txs[tx_id]
    assert "quality" not in out  # no labels in a batch to score
    if req is not None:
        assert req["role"] == "fraud-analyst" and req["payload"]["transactions"]
        assert out["review"]["by"] and out["review"]["approved"]


async def test_held_out_quality_and_a_rejected_review_blocks(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import fraud

    inp = {"train": str(DATA / "fraud_train.csv"), "transactions": str(DATA / "fraud_holdout.csv")}
    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        handle = await c.start(fraud.workflow, inp)
        req = await _decide(c, handle.id, approve=False, comment="block the lot")
        out = await c.result(handle.id, timeout=600)
    q = out["quality"]
    # measured on transactions never used for training: docs/scenarios.md states the figures (0.69 at 0.33%,
    # 0.93); comparing a traveller's payments with everyone's spending, not their own, had made them 0.67 at
    # 0.58%, 0.85 without a word (third unseen-data round, docs/status.md). 0.75 at 0.37% before the ninth
    # session's calibration on out-of-profile risks (test_fraud_calibration.py): it moved 6 points of
    # fraud from blocked to reviewed here, and kept the false-block rate asked for on later data
    assert q["transactions"] == 2500 and q["false_block_rate"] <= 0.005 and q["recall_block"] >= 0.66, q
    assert q["recall_block_or_review"] >= 0.9 and q["false_review_rate"] <= 0.045, q
    assert req is not None and out["review"]["approved"] is False
    reviewed = [t for t in out["transactions"] if t["first_decision"] == "review"]
    assert reviewed and all(t["decision"] == "block" for t in reviewed)


async def test_a_file_without_the_documented_columns_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import fraud

    bad = tmp_path / "tx.csv"
    bad.write_text("tx_id,customer_id,amount\nT1,C1,12.5\n")
    async with Client(f"sqlite:///{tmp_path}/p.db") as c:
        with pytest.raises(RunFailed, match=r"tx.csv:1: missing column\(s\) currency, merchant_category"):
            await c.run(fraud.workflow, {"transactions": str(bad)})
        with pytest.raises(RunFailed, match="input field 'train': .*nope.csv does not exist"):
            await c.run(fraud.workflow, {"train": str(tmp_path / "nope.csv")})
