"""The fraud scenario keeps the false-block rate asked for on later payments.

Its thresholds were set on training payments scored inside their own customers' spending profiles,
where they look less unusual than later payments do: on the fifth unseen-data round's platform
(tests/scenarios/data/fifth/make_csv.py) 0.72% of later legitimate payments were blocked for a
``false_block_rate`` of 0.5%, and a tie of equal risks bigger than the review budget sent 1.1% to a
person for a ``review_rate`` of 3% (docs/scenarios.md, "Calibration on unseen data")."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytest.importorskip("sklearn")


def _rates(tmp_path: Path, seed: int) -> dict[str, float]:
    # under a name of its own: the fourth round's tests import their own make_csv as "make_csv"
    spec = importlib.util.spec_from_file_location("fifth_make_csv", ROOT / "tests/scenarios/data/fifth/make_csv.py")
    assert spec is not None and spec.loader is not None
    make_csv = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_csv)
    from examples.scenarios import fraud

    make_csv.fraud(tmp_path, seed=seed)
    train = fraud.read_transactions(str(tmp_path / "fraud5_train.csv"), labelled=True)
    later = fraud.read_transactions(str(tmp_path / "fraud5_later.csv"), labelled=True)
    out = fraud.score(train, later, 0.005, 0.03)
    label = {r["tx_id"]: r["is_fraud"] for r in later}
    legit = [d["level"] for d in out["scored"] if not label[d["tx_id"]]]
    bad = [d["level"] for d in out["scored"] if label[d["tx_id"]]]
    return {
        "false_block": legit.count("block") / len(legit),
        "legit_review": legit.count("review") / len(legit),
        "caught": sum(level != "approve" for level in bad) / len(bad),
    }


def test_later_legitimate_payments_are_blocked_no_more_than_asked(tmp_path):
    rates = _rates(tmp_path, 5551)  # 0.72% blocked and 1.1% reviewed before
    assert rates["false_block"] <= 0.005, rates
    assert 0.015 <= rates["legit_review"] <= 0.035, rates  # the review budget of 3% is used, not exceeded
    assert rates["caught"] >= 0.97, rates
