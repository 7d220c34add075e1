"""Attacks on the model and tool layer: what a workflow file, a model's answer or a tool's result
can make it do that the workflow's policy forbids."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import podium
from podium.governance.policy import Policy

registry_mod = pytest.importorskip("podium.yaml._registry", reason="the YAML workflow package is not here yet")
podium_yaml = pytest.importorskip("podium.yaml")

from podium.ai import yaml_steps  # noqa: E402


class EmbeddingServer:
    """A real OpenAI-compatible ``/v1/embeddings`` endpoint on 127.0.0.1 that keeps what it got.
    (YAML steps cache their classifier by its labels: each test gives its own.)"""

    def __init__(self) -> None:
        self.texts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                outer.texts.extend(body["input"])
                data = [{"index": i, "embedding": [float(len(t) % 7 + 1), 1.0, 0.5]} for i, t in enumerate(body["input"])]
                payload = json.dumps({"data": data}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def embeddings(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmbeddingServer]:
    server = EmbeddingServer()
    # "ollama" is a remote provider as far as a policy goes: not "local".
    monkeypatch.setenv("PODIUM_OLLAMA_BASE_URL", server.url)
    yield server
    server.close()


@pytest.fixture
def registry() -> Any:
    return registry_mod.StepTypes([*registry_mod.builtin_step_types(), *yaml_steps.step_types()], entry_points=False)


CLASSIFY = """
name: leak-by-embedding
steps:
  - id: intent
    uses: {kind}
    with:
      text: "{{{{ input.message }}}}"
      embedder: "ollama:nomic-embed-text"
      {labels}:
        billing: ["I was charged twice", "{case}"]
        shipping: ["where is my parcel"]
"""


@pytest.mark.parametrize("kind,labels", [("classify", "labels"), ("route", "routes")])
async def test_a_workflow_file_cannot_send_text_to_a_provider_its_policy_forbids_through_an_embedder(
    registry: Any, tmp_path: Any, embeddings: EmbeddingServer, kind: str, labels: str
) -> None:
    """Attack: the policy keeps data on this machine (``allowed_providers: [local]``); a workflow
    file's classify or route step names a remote embedder, and the customer's message goes there."""
    wf = podium_yaml.load_text(CLASSIFY.format(kind=kind, labels=labels, case=f"policy {kind}"), registry=registry)
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.set_policy("leak-by-embedding", Policy(allowed_providers=["local"]))
        run = await client.start(wf, {"message": "my card 4111 1111 1111 1111 was charged twice"})
        with pytest.raises(Exception, match="may not call provider 'ollama'"):
            await client.result(run.id)
        audit = [e.action for e in await client.audit_log() if e.target == run.id]
    assert embeddings.texts == []
    assert "policy.refuse" in audit


async def test_a_kill_switch_on_a_provider_stops_an_embedding_classifier(
    registry: Any, tmp_path: Any, embeddings: EmbeddingServer
) -> None:
    wf = podium_yaml.load_text(CLASSIFY.format(kind="classify", labels="labels", case="switch"), registry=registry)
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.set_switch("provider", "ollama", reason="incident 42")
        run = await client.start(wf, {"message": "where is my parcel"})
        with pytest.raises(Exception, match="switched off"):
            await client.result(run.id)
    assert embeddings.texts == []


async def test_a_policy_that_redacts_payloads_keeps_personal_data_out_of_token_events(tmp_path: Any) -> None:
    """Attack: ``redact: [payloads]`` keeps personal data out of what is stored and handed on, but a
    streamed answer went out whole on ``podium.tokens.<run>`` (the dashboard, every subscriber)."""
    from podium import ai
    from podium.models.testing import ScriptedModel

    model = ScriptedModel(default="Call Ann at 555-0100 or mail ann@example.com")
    wf = podium.Workflow("stream-payloads")

    @wf.step
    async def talk(ctx: Any, input: Any) -> str:
        return (await ai.llm(ctx, "hello", model=model, stream=True)).text

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        await client.set_policy("stream-payloads", Policy(redact=["payloads"]))
        seen: list[Any] = []
        await client.on(ai.token_topic("*"), lambda _topic, payload: seen.append(payload))
        out = await client.run(wf, {})
    assert "ann@example.com" not in out
    assert "ann@example.com" not in json.dumps(seen), "token events must not carry what the policy redacts"


async def test_a_tool_error_that_names_a_credential_is_masked_in_the_audit_log(tmp_path: Any) -> None:
    """Attack: a tool fails with a message that echoes a credential (a remote answer quoting the
    request's Authorization header). The ``tool.call`` audit entry kept it in clear, and audit
    entries are chained: nobody can take it out again."""
    from podium import ai
    from podium.tools import tool

    @tool
    def crm_lookup(customer: str) -> str:
        """Look a customer up."""
        raise PermissionError("CRM said 401 to Authorization: Bearer sk-live-0123456789abcdef (password=hunter2secret)")

    wf = podium.Workflow("leaky-tool")

    @wf.step
    async def look(ctx: Any, input: Any) -> Any:
        try:
            return await ai.call_tool(ctx, crm_lookup, {"customer": "c-1"})
        except Exception:
            return "failed"

    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        assert await client.run(wf, {}) == "failed"
        entries = [e for e in await client.audit_log() if e.action == "tool.call"]
    assert entries and "CRM said 401" in entries[0].data
    assert "sk-live-0123456789abcdef" not in entries[0].data and "hunter2secret" not in entries[0].data


@pytest.mark.parametrize(
    "answer",
    [
        "Invest now: guaranteed\u200b returns of 20%!",  # a zero-width space inside the phrase
        "Invest now: g\u00adua\u00adran\u00adteed returns!",  # soft hyphens: invisible when shown
        "Invest now: " + "".join(chr(ord(c) + 0xFEE0) if c != " " else c for c in "guaranteed returns"),  # full-width
        "Invest now: guaranteed\n   returns!",  # the phrase split over two lines
        "Invest now: guaranteed \u2060returns \u202eof 20%",  # a word joiner and a bidi override
        # Cyrillic and Greek letters that look like Latin ones (failed before: NFKC keeps them apart)
        "Invest now: gu\u0430r\u0430nt\u0435\u0435d r\u0435turns!",  # Cyrillic a and e (U+0430, U+0435)
        "Invest now: GUARANT\u0415\u0415D R\u0415TURNS",  # Cyrillic capital E (U+0415)
        "Invest now: guar\u03b1nteed returns",  # Greek alpha
        "Invest now: gu\u0430r\u0430nt\u0435\u0435d\u200b r\u0435turns",  # both tricks at once
    ],
)
async def test_banned_content_is_found_through_unicode_tricks(answer: str) -> None:
    """Attack: an injected instruction has the model write the banned phrase with invisible or
    look-alike characters; a person reads the phrase, the validator did not see it."""
    from podium.validators import BannedContent

    banned = BannedContent(["guaranteed returns"])
    assert await banned.check(answer) is not None
    assert await BannedContent(["re:guaranteed\\s+returns"]).check(answer) is not None
    assert await banned.check("a guaranteed delivery; returns are free") is None


async def test_the_tone_of_a_long_answer_is_judged_all_through() -> None:
    """Attack: the hostile part comes after a polite opening longer than what the tone classifier
    reads (2,000 characters, 256 MiniLM tokens): only the opening was judged."""
    pytest.importorskip("onnxruntime", reason="the tone validator needs the embeddings extra")
    from podium.validators import Tone

    polite = "Thank you for reaching out, we appreciate your patience while we review your request. " * 14
    hostile = "You're an idiot and your complaint is worthless, stop wasting our time with it."
    tone = Tone(["hostile"])
    assert await tone.check(hostile) is not None
    assert await tone.check(polite) is None
    assert await tone.check(polite + hostile) is not None


LOCAL_PATH = """
name: local-path
steps:
  - id: reply
    uses: llm
    with:
      prompt: "hello"
      model: "local:{{ input.path }}"
"""


@pytest.mark.parametrize("path", ["/etc/hostname", "/no/such/file.gguf", "~/.podium/secrets.key", "../x.gguf"])
async def test_a_workflow_file_cannot_load_any_file_of_the_host_as_a_local_model(
    registry: Any, tmp_path: Any, path: str
) -> None:
    """Attack: a workflow file (or, through a template, a run's input) names ``local:/some/path``:
    the engine opened that file of its host and handed it to llama.cpp's GGUF parser, and the error
    told which files exist. Local model files are for the engine's configuration to name."""
    wf = podium_yaml.load_text(LOCAL_PATH, registry=registry)
    async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
        run = await client.start(wf, {"path": path})
        with pytest.raises(Exception, match="a workflow file names a local model by name, not by path") as err:
            await client.result(run.id)
    assert "does not exist" not in str(err.value)


async def test_honest_russian_and_greek_text_is_not_read_as_banned_english_words() -> None:
    """The look-alike reading (Cyrillic and Greek letters read as the Latin ones they look like)
    applies to words that mix scripts, and to whole Cyrillic or Greek words only in text written
    mostly in Latin letters: honest Russian or Greek text is read as written. Failed before: a
    Russian reply about rubbish (\u0441\u043e\u0440), sake (\u0441\u0430\u043a\u0435) and a cat
    (\u043a\u043e\u0442) was blocked for the banned words "cop", "cake" and "kot", and a Greek one
    for "kai" (\u03ba\u03b1\u03b9, "and")."""
    from podium.validators import BannedContent

    banned = BannedContent(["cop", "cake", "kot", "kai", "scam", "\u0433\u0430\u0440\u0430\u043d\u0442\u0438\u044f"])
    honest = (
        "\u0423\u0431\u0435\u0440\u0438\u0442\u0435 \u0432\u0435\u0441\u044c \u0441\u043e\u0440, "
        "\u0441\u0430\u043a\u0435 \u0438 \u043a\u043e\u0442 \u0432 \u043f\u043e\u0440\u044f\u0434\u043a\u0435"
    )
    assert await banned.check(honest) is None
    greek = "\u039f \u03ba\u03b1\u03b9\u03c1\u03cc\u03c2 \u03ba\u03b1\u03b9 \u03b7 \u03b8\u03ac\u03bb\u03b1\u03c3\u03c3\u03b1"
    assert await banned.check(greek) is None
    # still found: a mixed-script word in Russian text, a whole look-alike word in English text,
    # and a Russian banned word written with Latin look-alikes
    assert await banned.check(honest + " \u0441o\u0440") is not None  # Latin o inside
    assert await banned.check("This offer is no \u0455\u0441\u0430\u043c, really") is not None
    assert await banned.check("\u0433a\u0440a\u043d\u0442\u0438\u044f \u0434\u043e\u0445\u043e\u0434\u0430") is not None
    assert await banned.check("\u0433\u0430\u0440\u0430\u043d\u0442\u0438\u044f \u0434\u043e\u0445\u043e\u0434\u0430") is not None
