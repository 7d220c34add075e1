"""The third unseen-data round (docs/status.md, seventh session): fraud on the round's own data
(``data/third/make_fraud.py``). A review rate of 3% sent 9.5% of legitimate payments to a person: the
risk and its threshold were compared rounded to 4 places, where many payments tie. A traveller's
payments in another currency were compared with everyone's spending, not the customer's (the shipped
recall fell from 0.75 to 0.67: ``test_fraud.py``)."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import pytest

pytest.importorskip("sklearn", reason="the fraud scenario needs the ml extra: pip install 'podium[ml]'")

from podium import Client, RunStatus

sys.path.insert(0, str(Path(__file__).parent / "data" / "third"))
pytestmark = pytest.mark.timeout(900)


async def _approve_all(c: Client, run_id: str) -> None:
    while (await c.get(run_id)).status in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING):
        for req in await c.approvals(run_id=run_id):
            await c.decide(run_id, req["name"], approve=True)
        await asyncio.sleep(0.05)


async def test_fraud_reviews_the_share_of_payments_it_is_given(tmp_path, monkeypatch):
    """9,000 payments of the third round to learn from, 1,500 later ones: many legitimate payments have
    one rule fired and a model score near 0 (risk 0.075 and a hair), and the review threshold falls among
    them; compared after rounding to 4 places they were one tie, and 9.5% were reviewed."""
    import make_fraud

    from examples.scenarios import fraud

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    make_fraud.main(tmp_path, 9000, 1500)
    inp = {"train": str(tmp_path / "fraud3_train.csv"), "transactions": str(tmp_path / "fraud3_holdout.csv")}
    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        handle = await c.start(fraud.workflow, inp)
        await _approve_all(c, handle.id)
        out = await c.result(handle.id, timeout=600)
    q = out["quality"]
    assert q["transactions"] == 1500 and q["false_review_rate"] <= 0.045, q
    assert q["false_block_rate"] <= 0.01 and q["recall_block_or_review"] >= 0.9, q


def test_a_travellers_payment_is_compared_with_their_own_spending():
    """A customer who pays ~20 EUR at home pays 400 USD abroad: compared with everyone paying in dollars
    (median ~60), a mild anomaly; compared with the customer's own spending, a strong one."""
    from examples.scenarios import fraud

    rng = random.Random(3)

    def tx(i: int, cid: str, amount: float, currency: str, fraud_: int = 0) -> dict:
        return {"tx_id": f"t{i}", "customer_id": cid, "amount": amount, "currency": currency, "country": "DE",
                "home_country": "DE", "merchant_category": "fuel", "hour": 12, "new_device": 0, "tx_last_24h": 1,
                "is_fraud": fraud_}

    train = [tx(i, "small", rng.uniform(15, 25), "EUR") for i in range(40)]
    train += [tx(100 + i, f"u{i % 20}", rng.uniform(30, 120), "USD") for i in range(200)]
    train += [tx(400 + i, f"e{i % 20}", rng.uniform(30, 120), "EUR") for i in range(200)]
    train += [tx(700, "small", 25, "USD"), *(tx(800 + i, "x", 500, "EUR", 1) for i in range(5))]
    prof = fraud.profiles(train)
    abroad = fraud.signals(tx(900, "small", 400, "USD"), prof)
    stranger = fraud.signals(tx(901, "nobody", 400, "USD"), prof)
    assert abroad["amount_z"] > 2 * stranger["amount_z"] and "amount_anomaly" in fraud.fired(abroad), (abroad, stranger)


def test_a_risky_category_counts_however_an_export_names_it(tmp_path):
    """Before: only ``electronics, gift_cards, crypto, travel`` written so (spaces made ``_``) counted:
    the third round's ``digital goods`` (card testing's favourite) and a ``gift-cards`` or ``Airlines``
    export were not risky."""
    from examples.scenarios import fraud

    path = tmp_path / "tx.csv"
    cats = ["Gift Cards", "gift-cards", "ELECTRONICS", "digital goods", "Digital-Goods", "Airlines", "Crypto ",
            "Home & Garden", "groceries"]
    path.write_text("tx_id,customer_id,amount,currency,merchant_category,country,home_country,hour,new_device,tx_last_24h\n"
                    + "".join(f"T{i},c,10,EUR,{c},ES,ES,12,0,1\n" for i, c in enumerate(cats)), encoding="utf-8")
    rows = fraud.read_transactions(str(path), labelled=False)
    prof = fraud.profiles([{**r, "is_fraud": 0} for r in rows])
    risky = [fraud.signals(r, prof)["risky_category"] for r in rows]
    assert risky == [1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert [r["merchant_category"] for r in rows][-2:] == ["home_garden", "groceries"]
