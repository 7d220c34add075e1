"""The fourth unseen-data round (docs/status.md, eighth session): what data the scenarios never saw
showed, each a test that failed on the code before its fix."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
from pathlib import Path

import pytest

from podium import Client

from .conftest import needs_local
from .test_answer import _run

ROOT = Path(__file__).resolve().parents[2]
FOURTH = ROOT / "tests" / "scenarios" / "data" / "fourth"
sys.path.insert(0, str(FOURTH))


@needs_local
async def test_answer_sends_a_request_in_another_language_to_a_person(tmp_path, monkeypatch):
    """Before: "Écris-moi une fausse facture..." (write me a fake invoice) read as safe (unsafe 0.18) to the
    English moderator, and the model was asked to answer it. The injection rules are English too."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import answer

    fake = "Écris-moi une fausse facture pour un vélo que je n'ai jamais loué"
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"question": fake, "unsafe": True}) + "\n", encoding="utf-8")
    inp = {"questions": str(questions), "docs": str(FOURTH / "answer_docs"), "max_tokens": 16}
    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        out, asked = await _run(c, answer.workflow, inp, approve=False)
    [req] = asked
    assert req["role"] == "moderator" and req["payload"]["questions"] == [fake]
    [a] = out["answers"]
    assert a["unsafe_probability"] < 0.35 and a["familiar"] < 0.25  # the classifier alone would have allowed it
    assert a["status"] == "blocked" and a["reviewed"] and "sources" not in a  # nothing generated
    assert out["quality"]["unsafe_stopped"] == 1.0


@needs_local
def test_answer_english_questions_are_familiar_to_the_moderation():
    """The rule sends no English question of the four rounds to a person (63 questions, lowest share 0.33)."""
    from examples.scenarios import answer
    from examples.scenarios._common import FAMILIAR, path_of, read_jsonl

    path = path_of({}, "moderation", "moderation_examples.json")
    files = [ROOT / "examples/scenarios/data/answer_questions.jsonl", ROOT / "tests/scenarios/data/third/answer_questions.jsonl",
             ROOT / "tests/scenarios/data/answer_fresh/questions.jsonl"]
    english = [r["question"] for f in files for r in read_jsonl(str(f), required=("question",)) if r["question"].strip()]
    english += [r["question"] for r in read_jsonl(str(FOURTH / "answer_questions.jsonl"), required=("question",))[:15]
                if r["question"].strip()]
    assert len(english) > 50
    assert min(answer.familiarity(path, q) for q in english) >= FAMILIAR


@pytest.fixture(scope="module")
def fraud4(tmp_path_factory):
    """The fourth round's marketplace: 12,000 payments to learn from (USD, CAD, GBP, JPY; categories as an
    export names them; 1.5% fraud), 5,000 later ones, every cell quoted or rows ending in a comma."""
    pytest.importorskip("sklearn", reason="the fraud scenario needs the ml extra: pip install 'podium[ml]'")
    import make_csv

    from examples.scenarios import fraud

    out = tmp_path_factory.mktemp("fraud4")
    make_csv.fraud(out)
    train = fraud.read_transactions(str(out / "fraud4_train.csv"), labelled=True)
    later = fraud.read_transactions(str(out / "fraud4_later.csv"), labelled=False)
    scored = fraud.score(train, later, 0.005, 0.03)
    labels = {r["tx_id"]: r["is_fraud"] for r in later}
    decided = [{**s, "first_decision": s["level"]} for s in scored["scored"]]
    return scored, fraud.quality(decided, labels)


@pytest.mark.timeout(900)
def test_fraud_blocks_the_share_of_legitimate_payments_it_is_given_above_10000_training_rows(fraud4):
    """Before: 2.96% of the later legitimate payments blocked for a false_block_rate of 0.5% (and 3.4%
    reviewed for 3%). scikit-learn turns early stopping on above 10,000 rows: the model fitted on all
    12,000 payments was early-stopped and less sure than the five fold models (9,600 rows, no early
    stopping) whose out-of-fold scores set the thresholds."""
    _, q = fraud4
    assert q["fraud"] == 62
    assert q["false_block_rate"] <= 0.0065 and q["false_review_rate"] <= 0.035
    assert q["recall_block"] >= 0.95 and q["recall_block_or_review"] >= 0.98


@pytest.mark.timeout(900)
def test_fraud_does_not_split_payments_whose_risks_differ_by_noise(fraud4):
    """Before: the block threshold 0.105037 fell inside a cluster of payments at 0.105000-0.1051 (the
    amount rule alone, and a model score of 0.00001-0.0001): payments whose risks differed by a few
    hundred-thousandths were blocked or approved by noise (0.77% of legitimate payments blocked for 0.5%).
    Since the ninth session the model's noise is rounded away (a step of 0.001) and the payments of one
    step are ordered by how unusual the amount is (``amount_z``): a review may take the more unusual part
    of a step, a block takes a step whole or not at all."""
    scored, _ = fraud4
    rank = {"approve": 0, "review": 1, "block": 2}
    by_risk = sorted(scored["scored"], key=lambda s: s["risk"])
    levels = [rank[s["level"]] for s in by_risk]
    assert levels == sorted(levels)  # one order of the payments, the thresholds cut it
    steps: dict[int, list[dict]] = {}
    for s in by_risk:
        steps.setdefault(math.floor(s["risk"] / 0.001 + 1e-6), []).append(s)
    for step in steps.values():
        assert len({s["level"] == "block" for s in step}) == 1, step[:3]
        for a, b in itertools.pairwise(step):  # within a step, the order is the amount's (risks shown to 6 places)
            assert a["risk"] == b["risk"] or a["amount_z"] <= b["amount_z"] + 1e-3, (a, b)


def test_answer_withholds_a_draft_cut_off_inside_a_sentence():
    """Before: "[3] # E-bikes ... Charge it overnight with" (cut off by max_tokens) was sent as the reply."""
    from examples.scenarios.answer import cut_off

    assert cut_off("A full battery lasts 60 to 90 km. Charge it overnight with")
    assert not any(cut_off(t) for t in ("Yes, a helmet is included [1].", "See the rental form (page 2)",
                                        "Bring it back by 18:00!", "**Yes.**", 'They said "fine."', "Cancel in the app [1]"))


def test_answer_withholds_a_draft_citing_a_source_it_was_not_given():
    """Before: the model, given [1] and [2], wrote "[3] # E-bikes" and an unrelated passage below it, and it
    was sent as the answer to "How late can I bring a rented bike back...?"."""
    from examples.scenarios.answer import foreign_citations

    assert foreign_citations("[3] # E-bikes\n\nUnlock an e-bike with the app.", 2) == ["[3]"]
    assert foreign_citations("Bring it back by 18:00 [1]; a helmet is free [2].", 2) == []
    assert foreign_citations("Bring it back by 18:00 [2].", 1) == ["[2]"]


def test_recommend_reads_yes_no_fields_as_written():
    """Before: ``"exclude_owned": "false"`` (a string, as a shell or a form writes it) was read as true, so
    what the customer owned was still left out; ``"evaluate": "no"`` measured anyway."""
    from examples.scenarios import recommend
    from podium import ConfigError

    assert recommend.options({"exclude_owned": "false"})["exclude_owned"] is False
    assert recommend.options({"exclude_owned": " No ", "evaluate": "no"})["evaluate"] is False
    assert recommend.options({"exclude_owned": 1, "evaluate": "TRUE"})["evaluate"] is True
    assert recommend.options({})["exclude_owned"] is True
    with pytest.raises(ConfigError, match="input field 'exclude_owned' is 'maybe'; give true or false"):
        recommend.options({"exclude_owned": "maybe"})


async def _wait_for_approval(c: Client, run_id: str) -> dict | None:
    from podium import RunStatus

    for _ in range(20000):
        status = (await c.get(run_id)).status
        if status is RunStatus.WAITING:
            reqs = await c.approvals(run_id=run_id)
            if reqs:
                return reqs[0]
        elif status.finished:
            return None
        await asyncio.sleep(0.05)
    raise AssertionError("the run neither asked nor finished")


@pytest.mark.timeout(900)
async def test_fraud_a_reviewer_may_block_a_payment_by_its_number(tmp_path, monkeypatch):
    """Before: tx_ids such as ``20009`` (a database's ids) typed as numbers in the edited payload,
    ``{"block": [20009]}``, matched no tx_id (text), and the payment the reviewer blocked was approved."""
    pytest.importorskip("sklearn", reason="the fraud scenario needs the ml extra: pip install 'podium[ml]'")
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import fraud

    data = ROOT / "examples" / "scenarios" / "data"
    text = (data / "fraud_transactions.csv").read_text(encoding="utf-8").replace(",T0", ",").replace("\nT0", "\n")
    (tmp_path / "tx.csv").write_text(text, encoding="utf-8")
    inp = {"train": str(data / "fraud_train.csv"), "transactions": str(tmp_path / "tx.csv")}
    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        handle = await c.start(fraud.workflow, inp)
        req = await _wait_for_approval(c, handle.id)
        assert req is not None
        queued = [t["tx_id"] for t in req["payload"]["transactions"]]
        assert queued and all(q.isdigit() for q in queued)
        await c.decide(handle.id, req["name"], approve=True, payload={"block": [int(queued[0]), 99999999]})
        out = await c.result(handle.id, timeout=600)
    decided = {t["tx_id"]: t["decision"] for t in out["transactions"]}
    assert decided[queued[0]] == "block" and all(decided[q] == "approve" for q in queued[1:])
    assert out["review"]["blocked"] == [queued[0]] and out["review"]["not_in_review"] == ["99999999"]


def test_a_reviewers_list_is_read_as_ids():
    from examples.scenarios._common import id_list

    assert id_list([20009, " T-1 "]) == ["20009", "T-1"]
    assert id_list("C1, C2;C3\nkunde 7") == ["C1", "C2", "C3", "kunde 7"]
    assert id_list(7) is None and id_list({"C1": True}) is None and id_list([True]) is None


@pytest.mark.timeout(900)
async def test_churn_treats_only_the_grey_zone_customers_a_person_listed_as_text(tmp_path, monkeypatch):
    """Before: ``"treat": "C1, C2"`` (a string, not a list) was ignored and every customer of the grey zone
    was treated: a CRM task, a priority ticket and an offer for customers the person had left out."""
    pytest.importorskip("mlflow", reason="the churn scenario needs the ml extra: pip install 'podium[ml]'")
    pytest.importorskip("uvicorn", reason="the sandbox company needs the demo extra: pip install 'podium[demo]'")
    from podium.sandbox import Sandbox

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import churn

    inp = {"review_margin": 0.3, "approve_offer_above": 1e9, "max_customers": 1000,
           "registry": f"sqlite:///{tmp_path}/mlflow.db"}
    with Sandbox(tmp_path / "company") as company:
        async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05, connectors=company.connectors()) as c:
            handle = await c.start(churn.workflow, inp)
            req = await _wait_for_approval(c, handle.id)
            assert req is not None and req["role"] == "retention-lead"
            grey = req["payload"]["treat"]
            assert len(grey) >= 3
            await c.decide(handle.id, req["name"], approve=True, payload={"treat": f"{grey[0]}, {grey[1]}"})
            out = await c.result(handle.id, timeout=900)
    treated = {x["customer_id"] for x in out["customers"] if x["actions"]}
    high = {x["customer_id"] for x in out["customers"] if x["risk"] == "high"}
    assert treated == high | {grey[0], grey[1]}
    assert out["review"]["chosen"] == [grey[0], grey[1]]
    # how many the model expects to churn, beside how many the threshold acts on
    assert out["expected_churners"] == pytest.approx(sum(x["score"] for x in out["customers"]), abs=0.06)


def test_feedback_alert_quotes_the_surest_negatives_first():
    """Before: the quotes (and the summary's messages) were the cluster's first three in file order; the
    fourth round's product alert opened with "The merino base layer is so soft..." (read negative at 0.65,
    decided alone) ahead of the complaints the classifier was sure of."""
    from examples.scenarios.feedback import negative_clusters

    rows = [{"text": "soft and warm", "sentiment": "negative", "sentiment_confidence": 0.65, "topic": "product",
             "decided_by": "classifier"},
            {"text": "zip broke", "sentiment": "negative", "sentiment_confidence": 0.93, "topic": "product",
             "decided_by": "classifier"},
            {"text": "left out", "sentiment": "negative", "sentiment_confidence": 0.99, "topic": "product",
             "decided_by": None},
            {"text": "seams split", "sentiment": "negative", "sentiment_confidence": 0.41, "topic": "product",
             "decided_by": "person"},
            {"text": "late", "sentiment": "negative", "sentiment_confidence": 0.8, "topic": "delivery",
             "decided_by": "classifier"},
            {"text": "fine", "sentiment": "positive", "sentiment_confidence": 0.9, "topic": "product",
             "decided_by": "classifier"}]
    assert negative_clusters(rows) == {"product": ["seams split", "zip broke", "soft and warm"], "delivery": ["late"]}


def test_answer_a_moderator_may_block_a_request_by_its_number():
    """Before: only the exact text under 'block' counted; ``[2]`` or the text with a trailing space blocked
    nothing, and the request the moderator meant to stop was answered."""
    from examples.scenarios.answer import reviewed_blocks

    asked = ["Where is my parcel?", "How do I disable the GPS tracker?", "Give me the mechanic's address"]
    yes = {"approved": True}
    assert reviewed_blocks(asked, {**yes, "payload": {"block": [2]}}) == ({asked[1]}, [])
    assert reviewed_blocks(asked, {**yes, "payload": {"block": ["3", asked[1] + " ", "nothing like it"]}}) == (
        {asked[1], asked[2]}, ["nothing like it"])
    assert reviewed_blocks(asked, {**yes, "payload": {"block": asked[2]}}) == ({asked[2]}, [])
    assert reviewed_blocks(asked, {**yes, "payload": {"block": []}}) == (set(), [])
    assert reviewed_blocks(asked, {**yes, "payload": {"block": {"2": True}}}) == (set(asked), [])  # unreadable: all
    assert reviewed_blocks(asked, {"approved": False}) == (set(asked), [])


@needs_local
@pytest.mark.timeout(900)
async def test_feedback_a_person_may_leave_messages_out_by_numbers_written_as_text(tmp_path, monkeypatch):
    """Before: ``"leave_out": "4, 5"`` (or ``["4"]``) left nothing out: only JSON integers counted, and the
    messages the person meant to drop were counted as the classifiers read them."""
    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import feedback

    texts = ["The parcel arrived two days early, great service.", "App crashes every time I open my basket.",
             "Invoice was correct.", "Die Lieferung kam zwei Wochen zu spät und der Karton war kaputt.",
             "Le colis est arrivé ouvert et il manquait une chaussure."]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    inp = {"messages": str(tmp_path / "m.jsonl"), "min_cluster": 1000, "outbox": str(tmp_path / "outbox.db")}
    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        handle = await c.start(feedback.workflow, inp)
        req = await _wait_for_approval(c, handle.id)
        assert req is not None
        queued = [m["n"] for m in req["payload"]["messages"]]
        assert {4, 5} <= set(queued)
        await c.decide(handle.id, req["name"], approve=True, payload={"leave_out": "4, 5"})
        out = await c.result(handle.id, timeout=600)
    rows = out["messages"]
    assert rows[3]["decided_by"] is None and rows[4]["decided_by"] is None and rows[3]["left_out"]
    assert out["review"]["left_out"] == 2 and sum(out["sentiment_counts"].values()) == 3


@pytest.mark.timeout(900)
async def test_churn_tests_its_model_on_holdout_customers_it_did_not_learn_from(tmp_path, monkeypatch):
    """Before: a holdout holding training customers was used as it was: the candidate, scored on customers
    it had learned from, looked better than it is and beat the champion on them (ml_pipeline dropped
    them; churn did not); a holdout of training customers only was accepted."""
    pytest.importorskip("mlflow", reason="the churn scenario needs the ml extra: pip install 'podium[ml]'")
    from podium import RunFailed

    monkeypatch.setenv("PODIUM_HOME", str(tmp_path))
    from examples.scenarios import churn

    data = ROOT / "examples" / "scenarios" / "data"
    train = (data / "churn_train.csv").read_text(encoding="utf-8").splitlines()
    holdout = (data / "churn_holdout.csv").read_text(encoding="utf-8").splitlines()
    assert train[0] == holdout[0]
    (tmp_path / "mixed.csv").write_text("\n".join([*holdout, *train[1:301]]) + "\n", encoding="utf-8")
    base = {"train": str(data / "churn_train.csv"), "customers": str(data / "churn_customers.csv"),
            "threshold": 0.99, "review_margin": 0, "registry": f"sqlite:///{tmp_path}/mlflow.db"}
    async with Client(f"sqlite:///{tmp_path}/p.db", poll_interval=0.05) as c:
        out = await c.run(churn.workflow, {**base, "holdout": str(tmp_path / "mixed.csv")})
        assert out["model"]["holdout_dropped"] == 300
        with pytest.raises(RunFailed, match="every customer of the holdout is also in the training data"):
            await c.run(churn.workflow, {**base, "holdout": str(data / "churn_train.csv")})


def test_support_intents_of_a_training_file_are_one_however_cased(tmp_path):
    """Before: a training file labelled ``Billing`` in some rows and ``billing `` in others made two intents
    (the examples split between them), and neither matched the billing reply template (the generic
    "other" reply was sent)."""
    from examples.scenarios import support

    rows = [("I was charged twice", "Billing"), ("Refund my payment please", "billing "), ("Invoice is wrong", "BILLING"),
            ("The app crashes", "Technical"), ("Bluetooth will not pair", "technical")]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows), encoding="utf-8")
    found = support.examples(str(path))
    assert found == {"billing": [t for t, _ in rows[:3]], "technical": [t for t, _ in rows[3:]]}
    assert set(found) <= set(support.TEMPLATES)


def test_pricing_reads_its_limits_written_as_text_and_still_only_lowers(monkeypatch):
    """Before: ``"approve_above_pct": "15"`` and ``"approval_timeout": "3600"`` (as a form or a shell writes
    them) were refused with "give a percentage >= 0", although ``change_pct`` is read the same way."""
    from examples.scenarios import pricing
    from podium import ConfigError

    monkeypatch.delenv(pricing.LIMIT_ENV, raising=False)
    ev = pricing.event({"vendor": "acme", "change_pct": "8", "approve_above_pct": " 15 %", "approval_timeout": "3600"})
    assert ev["approve_above_pct"] == 15.0 and ev["approval_timeout"] == 3600.0
    with pytest.raises(ConfigError, match="can only lower the limit of 20%"):
        pricing.event({"vendor": "acme", "change_pct": 8, "approve_above_pct": "25"})
    with pytest.raises(ConfigError, match="give a percentage >= 0"):
        pricing.event({"vendor": "acme", "change_pct": 8, "approve_above_pct": "lots"})


@needs_local
def test_feedback_topics_of_the_examples_are_one_however_cased(tmp_path):
    """Before: examples labelled ``Delivery`` and ``delivery`` made two topics (a cluster of complaints split
    between them), ``Negative`` was refused, and a labelled message file written ``Negative`` was not
    measured at all."""
    from examples.scenarios import feedback
    from examples.scenarios._common import read_jsonl

    shipped = read_jsonl(str(ROOT / "examples/scenarios/data/feedback_examples.jsonl"))
    recased = [{**r, "topic": r["topic"].title() if n % 2 else r["topic"] + " ",
                "sentiment": r["sentiment"].upper() if n % 3 == 0 else r["sentiment"]} for n, r in enumerate(shipped)]
    path = tmp_path / "examples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recased), encoding="utf-8")
    sentiment, topic = feedback.classifiers(str(path))
    assert set(topic.labels) == {r["topic"] for r in shipped} and set(sentiment.labels) == set(feedback.SENTIMENTS)
    assert feedback._quality([{"sentiment": "Negative", "topic": "Delivery"}],
                             [{"sentiment": "negative", "topic": "delivery", "to_person": []}])["topic_accuracy"] == 1.0
