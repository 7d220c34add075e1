"""The seed scenarios' items left by the fourth unseen-data round (docs/status.md, "Scenario items of
the fourth round, closed"): each test failed on the code before its fix."""

from __future__ import annotations

import pytest


def _fraud_rows(seed: int, n: int, currency: str) -> list[dict]:
    from tests.scenarios.test_fraud_unseen import _generated

    return [{**r, "currency": currency} for r in _generated(seed, n, 0)]


@pytest.mark.parametrize(("train_cur", "tx_cur"), [("", "EUR"), ("EUR", "")])
def test_fraud_a_currency_named_on_one_side_only_is_the_default(train_cur, tx_cur):
    """A training export without currencies and a scoring file naming EUR (or the reverse): every
    payment went to a person as ``unknown_currency``. An empty currency is the one currency the files
    name, and the output says so."""
    pytest.importorskip("sklearn")
    from examples.scenarios import fraud

    train, txs = _fraud_rows(41, 1500, train_cur), _fraud_rows(42, 300, tx_cur)
    out = fraud.score(train, txs, 0.005, 0.03)
    assert not [s for s in out["scored"] if "unknown_currency" in s["reasons"]]
    legit = [s for s, t in zip(out["scored"], txs, strict=True) if not t["is_fraud"]]
    stopped = [s for s in legit if s["level"] != "approve"]
    assert len(stopped) <= 0.08 * len(legit), len(stopped)
    assert "taken to be in EUR" in out["currency_note"]


def test_fraud_an_empty_currency_beside_several_named_stays_unknown():
    """With EUR and JPY named, an empty currency could be either: still a person's decision, with a note."""
    pytest.importorskip("sklearn")
    from examples.scenarios import fraud

    train = _fraud_rows(41, 1000, "EUR") + [{**r, "tx_id": f"y{i}", "currency": "JPY", "amount": r["amount"] * 160}
                                             for i, r in enumerate(_fraud_rows(43, 200, ""))]
    txs = _fraud_rows(42, 20, "")
    out = fraud.score(train, txs, 0.005, 0.03)
    assert all("unknown_currency" in s["reasons"] for s in out["scored"])
    assert "EUR, JPY" in out["currency_note"] and "cannot be told" in out["currency_note"]


def _retail_copy(tmp_path, change) -> dict[str, str]:
    """The shipped retail samples, each row passed through ``change(file, row)``."""
    import csv
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "data"
    out = {}
    for name in ("catalogue", "inventory", "orders"):
        with open(data / f"retail_{name}.csv", newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        path = tmp_path / f"{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(change(name, dict(r)) for r in rows)
        out[name] = str(path)
    return out


async def _recommend(tmp_path, input: dict) -> dict:
    from examples.scenarios import recommend
    from podium import Client

    async with Client(f"sqlite:///{tmp_path}/r{len(list(tmp_path.iterdir()))}.db") as c:
        return await c.run(recommend.workflow, {"k": 5, "today": "2026-12-04", **input})


async def test_recommend_ids_are_compared_without_case(tmp_path, monkeypatch):
    """The orders export writing ``c004`` and ``sku`` in lower case, the inventory's SKUs in upper case
    with spaces around: the customer asked about as `` C004 `` was a stranger (popular products) and the
    products' stock was not found. The same recommendations as on the samples now."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    (tmp_path / "a").mkdir()
    same = _retail_copy(tmp_path / "a", lambda n, r: r)

    def typed(name: str, row: dict) -> dict:
        if name == "orders":
            row.update(customer_id=row["customer_id"].lower(), sku=row["sku"].lower())
        if name == "inventory":
            row["sku"] = f"  {row['sku'].upper()} "
        return row

    (tmp_path / "b").mkdir()
    other = _retail_copy(tmp_path / "b", typed)
    want = await _recommend(tmp_path, {"customer_id": "C004", **same})
    got = await _recommend(tmp_path, {"customer_id": " C004 ", **other})
    assert want["known_customer"] and got["known_customer"]
    assert got["bought"] == want["bought"] and want["bought"]  # as the catalogue spells them
    assert [r["sku"] for r in got["recommendations"]] == [r["sku"] for r in want["recommendations"]]
    assert [r["in_stock"] for r in got["recommendations"]] == [r["in_stock"] for r in want["recommendations"]]
    # nothing else is merged: C04 is not C004
    assert not (await _recommend(tmp_path, {"customer_id": "C04", **other}))["known_customer"]


async def test_recommend_refuses_a_catalogue_whose_skus_differ_only_in_case(tmp_path, monkeypatch):
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from podium import RunFailed

    files = _retail_copy(tmp_path, lambda n, r: r)
    with open(files["catalogue"], encoding="utf-8") as f:
        lines = f.read().splitlines()
    sku = lines[1].split(",")[0]
    lines.append(",".join([sku.lower(), *lines[1].split(",")[1:]]))
    with open(files["catalogue"], "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(RunFailed, match=rf"catalogue.csv:{len(lines)}: sku '{sku.lower()}' differs from '{sku}' "
                       r"\(line 2\) only in case"):
        await _recommend(tmp_path, {"customer_id": "C004", **files})


async def test_feedback_a_message_an_alert_would_count_is_checked_unless_the_classifier_is_sure():
    """A reviewer approved the queue as shown, and the alert then counted and quoted a compliment read
    negative at 0.65 ("The merino base layer is so soft...") that no person had seen. A message read
    negative under ``alert_review_below`` (0.7) is in the person's queue now; the sure ones are not."""
    import json
    from pathlib import Path

    from examples.scenarios import feedback
    from examples.scenarios._common import path_of

    path = Path(__file__).parent / "data" / "fourth" / "feedback_messages.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    found = await feedback._label(path_of({}, "examples", "feedback_examples.jsonl"), [r["text"] for r in rows])
    below = feedback.thresholds({})
    alone = [(r, f) for r, f in zip(rows, found, strict=True) if not feedback.to_person(f, *below)]
    negative = [(r, f) for r, f in alone if f["sentiment"] == "negative"]
    assert negative and all(f["sentiment_confidence"] >= 0.7 for _, f in negative)
    assert all(r["sentiment"] == "negative" for r, _ in negative), [r["text"] for r, _ in negative]
    merino = next(f for r, f in zip(rows, found, strict=True) if r["text"].startswith("The merino base layer"))
    assert any("an alert would count" in why for why in feedback.to_person(merino, *below))
    with pytest.raises(Exception, match="alert_review_below"):
        feedback.thresholds({"alert_review_below": "high"})


async def test_answer_moderation_does_not_send_other_businesses_safe_questions_to_a_person():
    """The moderation examples were a shop's: safe questions of a bike rental ("How do I unlock the
    e-bike with the app?" 0.73), a coworking space and a climbing gym went to a person, 8 of the 26
    English safe questions of the three fresh sets. The examples now speak of many businesses (none of
    those three); every unsafe request of the sets is still stopped, and requests in other languages
    still go to a person."""
    import json
    from pathlib import Path

    from examples.scenarios import answer
    from examples.scenarios._common import FAMILIAR, path_of

    data = Path(__file__).parent / "data"
    path = path_of({}, "moderation", "moderation_examples.json")
    safe_sent = safe = unsafe_stopped = unsafe = 0
    for f in ("answer_fresh/questions.jsonl", "third/answer_questions.jsonl", "fourth/answer_questions.jsonl"):
        rows = [json.loads(x) for x in (data / f).read_text(encoding="utf-8-sig").splitlines() if x.strip()]
        rows = [r for r in rows if r["question"].strip()]
        scores = await answer._unsafe(path, [r["question"] for r in rows])
        for r, p in zip(rows, scores, strict=True):
            familiar = answer.familiarity(path, r["question"])
            stopped = bool(answer.INJECTION.search(r["question"])) or p >= 0.35 or familiar < FAMILIAR
            if str(r.get("unsafe")).lower() in ("true", "yes", "1"):
                unsafe, unsafe_stopped = unsafe + 1, unsafe_stopped + stopped
            elif familiar >= FAMILIAR:  # English: the other languages go to a person by design
                safe, safe_sent = safe + 1, safe_sent + stopped
            else:
                assert stopped
    assert unsafe == 15 and unsafe_stopped == unsafe
    assert safe == 26 and safe_sent <= 3, safe_sent


async def test_recommend_keeps_apart_customers_whose_ids_differ_only_in_case(tmp_path, monkeypatch):
    """A system with case-sensitive customer ids (``C004`` and ``c004`` two people): the orders of
    both were merged into one history, so C004 was recommended from c004's purchases (and told
    about products another person bought). The asked id finds its case variant only when it is the
    one there is; two variants and no exact match is an error naming both."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from podium import RunFailed

    (tmp_path / "a").mkdir()
    apart = _retail_copy(tmp_path / "a", lambda n, r: {**r, "customer_id": "Z999"} if r.get("customer_id") == "C051" else r)
    (tmp_path / "b").mkdir()
    cased = _retail_copy(tmp_path / "b", lambda n, r: {**r, "customer_id": "c004"} if r.get("customer_id") == "C051" else r)
    want = await _recommend(tmp_path, {"customer_id": "C004", **apart})
    got = await _recommend(tmp_path, {"customer_id": "C004", **cased})
    assert got["bought"] == want["bought"] and want["bought"]
    assert [r["sku"] for r in got["recommendations"]] == [r["sku"] for r in want["recommendations"]]
    other = await _recommend(tmp_path, {"customer_id": "c004", **cased})
    assert other["bought"] == (await _recommend(tmp_path, {"customer_id": "Z999", **apart}))["bought"]
    rename = {"C051": "ab1", "C030": "AB1"}
    (tmp_path / "c").mkdir()
    two = _retail_copy(tmp_path / "c", lambda n, r: {**r, "customer_id": rename.get(r["customer_id"], r["customer_id"])} if n == "orders" else r)
    with pytest.raises(RunFailed, match=r"'Ab1'.*'AB1' and 'ab1'.*only in case"):
        await _recommend(tmp_path, {"customer_id": "Ab1", **two})
