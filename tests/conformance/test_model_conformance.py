"""The model conformance suite: every :class:`~podium.models.Model` in the repository must pass it.

Each case runs against the real implementation:

- ``scripted``: :class:`~podium.models.testing.ScriptedModel`, with rules for the suite's prompts;
- ``local``: the embedded llama.cpp model (SmolLM2-135M), in this process;
- ``openai``: the OpenAI-compatible provider against a real ``llama_cpp.server`` on 127.0.0.1;
- ``anthropic``: the Anthropic provider. No Messages API server runs offline, so the cases that need
  an answer from a model skip, saying so; its error contract runs against real HTTP servers on
  127.0.0.1 that answer with the API's error envelopes.

What the contract says (``podium/models/_base.py`` and ``_errors.py``): ``complete`` returns a
:class:`Response` of JSON data with text or tool calls, a ``finish_reason`` from a fixed set, the
``provider:model`` that answered and the :class:`Usage`; it honours ``max_tokens``, ``stop``,
``output_schema`` (when ``native_structured_output``) and ``tool_choice``; ``stream`` sends the
text to a sink and returns the same kind of Response; it fails only with
:class:`ProviderError` (retryable or not, with ``status`` and ``retry_after``) or another
:class:`ModelError` such as :class:`ModelNotAvailable`; and the model is usable after ``aclose``.

To run a new provider against it, add a case to ``CASES`` and to the ``case`` fixture.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
from conformance_helpers import closed_port, json_answer

from podium.models import (
    Message,
    Model,
    ModelError,
    ModelNotAvailable,
    ProviderError,
    RateLimited,
    Request,
    Response,
    ToolCall,
    ToolSpec,
    Usage,
    get_model,
)
from podium.models.testing import ScriptedModel

FINISH_REASONS = {"stop", "length", "tool_calls", "content_filter"}

LOOKUP = ToolSpec(
    name="get_order",
    description="Look up an order by its number.",
    parameters={
        "type": "object",
        "properties": {"order_id": {"type": "integer"}},
        "required": ["order_id"],
    },
)
SENTIMENT = {
    "type": "object",
    "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
    "required": ["sentiment"],
}
COUNT = "Count from 1 to 30, separated by commas."
NO_SERVER = (
    "no Anthropic Messages API server runs offline (tests/ai/test_ai_anthropic.py replays wire fixtures "
    "in-process); the Anthropic provider runs only the error cases of this suite, against real HTTP servers"
)
SCRIPTED = "the scripted model answers from its script: it generates nothing for {} to bound"


def _scripted_reply(request: Request) -> Any:
    if request.tools and request.tool_choice not in (None, "auto", "none"):
        name = request.tool_choice if request.tool_choice != "required" else request.tools[0].name
        return ToolCall(id=f"call_{len(request.messages)}", name=name, arguments={"order_id": 42})
    if request.output_schema is not None:
        return {"sentiment": "negative"}
    return "Hello! How can I help you today?"


@dataclass
class Case:
    """One implementation under test, and what it can be asked here."""

    kind: str
    model: Model
    answers: str | None = None
    """Why it cannot answer here (no server for it), or None: it answers."""
    generates: bool = True
    """Generates its text token by token (so ``max_tokens`` and ``stop`` apply to it)."""
    http: Callable[..., Model] | None = None
    """For HTTP providers: makes the model with other options (``base_url=``, ``timeout=``...)."""
    error_body: Callable[[int, str], dict[str, Any]] | None = None
    """For HTTP providers: the provider's error envelope with this status and message."""
    bad_answer: dict[str, Any] | None = None
    """For HTTP providers: a 200 answer of JSON that is not a completion."""
    unavailable: tuple[Callable[[], Awaitable[Any]], ...] = ()
    """Each uses the provider without something it needs (a key, a model file): ModelNotAvailable."""

    def needs_answers(self) -> None:
        if self.answers:
            pytest.skip(self.answers)


def _openai_error(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "code": status}}


def _anthropic_error(status: int, message: str) -> dict[str, Any]:
    kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(status, "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


async def _openai_without_key() -> Any:
    # The real OpenAI endpoint and no key: refused before any connection is tried.
    return await get_model("openai:gpt-4o-mini").complete(Request(messages=(Message.user("hi"),)))


async def _anthropic_without_key() -> Any:
    return await get_model("anthropic:claude-3-5-haiku-latest").complete(
        Request(messages=(Message.user("hi"),))
    )


async def _local_without_file() -> Any:
    return get_model("local:/nonexistent/model.gguf")


async def _local_unknown_name() -> Any:
    return get_model("local:no-such-model")


CASES = ["scripted", "local", "openai", "anthropic"]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    kind = request.param
    if kind == "scripted":
        yield Case(kind, ScriptedModel([(None, _scripted_reply)]), generates=False)
    elif kind == "local":
        request.getfixturevalue("llama_ready")
        # One thread: on a busy 2-core machine, llama.cpp's threads waiting on each other cost more.
        model = get_model("local:smollm2-135m", n_threads=1)
        yield Case(kind, model, unavailable=(_local_without_file, _local_unknown_name))
    elif kind == "openai":
        url = request.getfixturevalue("llama_server")

        def make_openai(**options: Any) -> Model:
            return get_model("llamacpp:smollm2", **{"base_url": url, **options})

        yield Case(
            kind,
            make_openai(),
            http=make_openai,
            error_body=_openai_error,
            bad_answer={"object": "chat.completion", "choices": []},
            unavailable=(_openai_without_key,),
        )
    else:

        def make_anthropic(**options: Any) -> Model:
            return get_model("anthropic:claude-3-5-haiku-latest", **{"api_key": "sk-ant-test", **options})

        yield Case(
            kind,
            make_anthropic(base_url=f"http://127.0.0.1:{closed_port()}"),
            answers=NO_SERVER,
            http=make_anthropic,
            error_body=_anthropic_error,
            bad_answer={"type": "message", "role": "assistant", "model": "claude-3-5-haiku-latest"},
            unavailable=(_anthropic_without_key,),
        )


def ask(prompt: str, **options: Any) -> Request:
    return Request(messages=(Message.user(prompt),), **{"temperature": 0.0, **options})


def check_response(r: Response, case: Case) -> None:
    """What every Response promises, whatever was asked."""
    assert isinstance(r, Response)
    assert isinstance(r.text, str)
    assert r.finish_reason in FINISH_REASONS, r.finish_reason
    assert r.model == case.model.spec
    assert isinstance(r.usage, Usage)
    assert isinstance(r.usage.input_tokens, int) and isinstance(r.usage.output_tokens, int)
    assert r.usage.input_tokens > 0 and r.usage.output_tokens >= 0
    assert r.usage.latency >= 0 and r.usage.calls == 1
    assert r.usage.cost is None or r.usage.cost >= 0
    assert isinstance(r.tool_calls, tuple) and isinstance(r.trail, tuple)
    for call in r.tool_calls:
        assert isinstance(call, ToolCall) and call.id and call.name and isinstance(call.arguments, dict)
    assert (r.finish_reason == "tool_calls") == bool(r.tool_calls)


# --- identity ----------------------------------------------------------------------------------------


async def test_identity(case: Case):
    m = case.model
    assert isinstance(m, Model)
    assert m.provider and m.name and ":" not in m.provider
    assert m.spec == f"{m.provider}:{m.name}"
    assert m.spec in repr(m)
    assert isinstance(m.native_structured_output, bool)


# --- answers -----------------------------------------------------------------------------------------


async def test_plain_completion_returns_text_and_usage(case: Case):
    case.needs_answers()
    r = await case.model.complete(ask("Say hello in one short sentence.", max_tokens=24))
    check_response(r, case)
    assert r.text.strip()
    assert r.tool_calls == () and r.finish_reason in ("stop", "length")
    assert r.usage.output_tokens > 0
    assert r.output is None  # set by podium.ai after validation, never by a bare model


class _Pieces:
    """A TextSink that keeps the pieces (and forgets them on restart)."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    async def text(self, delta: str) -> None:
        assert isinstance(delta, str) and delta
        self.pieces.append(delta)

    async def restart(self) -> None:
        self.pieces.clear()


async def test_stream_sends_the_text_and_returns_the_same_kind_of_response(case: Case):
    """``stream``: the pieces make up the answer's text; the Response keeps every promise of
    ``complete`` (it is what a durable call logs)."""
    case.needs_answers()
    sink = _Pieces()
    r = await case.model.stream(ask("Say hello in one short sentence.", max_tokens=24), sink)
    check_response(r, case)
    assert r.text.strip() and "".join(sink.pieces) == r.text
    assert r.usage.output_tokens > 0
    forced = await case.model.stream(
        ask("Where is my order 42?", tools=(LOOKUP,), tool_choice="get_order", max_tokens=40), _Pieces()
    )
    check_response(forced, case)
    assert forced.tool_calls and forced.tool_calls[0].name == "get_order"


async def test_response_is_json_data_that_round_trips(case: Case):
    """A Response is logged as a durable call's result: it must survive JSON and compare equal."""
    case.needs_answers()
    r = await case.model.complete(ask("Name a colour.", max_tokens=8))
    data = json.loads(json.dumps(dataclasses.asdict(r)))
    back = Response(
        **{
            **data,
            "usage": Usage(**data["usage"]),
            "tool_calls": [ToolCall(**c) for c in data["tool_calls"]],
        }
    )
    assert back == r and hash(back.usage) == hash(r.usage)


async def test_system_message_and_conversation_are_accepted(case: Case):
    case.needs_answers()
    r = await case.model.complete(
        Request(
            messages=(
                Message.system("You are a terse assistant."),
                Message.user("Hi."),
                Message.assistant("Hello."),
                Message.user("Say goodbye."),
            ),
            max_tokens=12,
            temperature=0.0,
        )
    )
    check_response(r, case)
    assert r.text.strip()


async def test_max_tokens_bounds_the_output(case: Case):
    case.needs_answers()
    if not case.generates:
        pytest.skip(SCRIPTED.format("max_tokens"))
    r = await case.model.complete(ask(COUNT, max_tokens=4))
    check_response(r, case)
    assert r.finish_reason == "length"
    assert 0 < r.usage.output_tokens <= 4


async def test_stop_sequence_ends_the_output(case: Case):
    case.needs_answers()
    if not case.generates:
        pytest.skip(SCRIPTED.format("stop"))
    free = await case.model.complete(ask(COUNT, max_tokens=40))
    # A stop string from the model's own answer, past its start: at temperature 0 it comes again.
    text = free.text
    k = next((i for i in range(len(text) // 2, len(text) - 1) if text.find(text[i : i + 2]) == i), None)
    assert k, f"the answer is too short or repetitive to pick a stop string from: {text!r}"
    stop = text[k : k + 2]
    stopped = await case.model.complete(ask(COUNT, max_tokens=40, stop=(stop,)))
    check_response(stopped, case)
    assert stop not in stopped.text and stopped.finish_reason == "stop"
    assert stopped.usage.output_tokens < free.usage.output_tokens
    assert text.startswith(stopped.text.rstrip()) and len(stopped.text.rstrip()) < len(text.rstrip())


async def test_structured_output_follows_the_schema(case: Case):
    case.needs_answers()
    if not case.model.native_structured_output:
        pytest.skip("the model does not constrain its output to a schema (native_structured_output=False)")
    r = await case.model.complete(
        ask(
            "The product broke after one day. Is the sentiment positive or negative?",
            output_schema=SENTIMENT,
            output_name="sentiment",
            max_tokens=40,
        )
    )
    check_response(r, case)
    jsonschema.validate(json.loads(r.text), SENTIMENT)


async def test_forced_tool_call(case: Case):
    case.needs_answers()
    r = await case.model.complete(
        ask("Where is my order 42?", tools=(LOOKUP,), tool_choice="get_order", max_tokens=40)
    )
    check_response(r, case)
    assert r.finish_reason == "tool_calls" and len(r.tool_calls) >= 1
    call = r.tool_calls[0]
    assert call.name == "get_order"
    jsonschema.validate(call.arguments, LOOKUP.parameters)


async def test_tool_result_is_taken_back(case: Case):
    """The conversation after a tool call (assistant tool call, tool result) is a valid request."""
    case.needs_answers()
    call = ToolCall(id="call_1", name="get_order", arguments={"order_id": 42})
    r = await case.model.complete(
        Request(
            messages=(
                Message.user("Where is my order 42?"),
                Message.assistant("", [call]),
                Message.tool(
                    '{"order_id": 42, "status": "shipped"}', tool_call_id="call_1", name="get_order"
                ),
            ),
            tools=(LOOKUP,),
            tool_choice="none",
            max_tokens=24,
            temperature=0.0,
        )
    )
    check_response(r, case)
    assert r.tool_calls == () and r.text.strip()


async def test_concurrent_calls_each_get_their_own_answer(case: Case):
    case.needs_answers()
    prompts = [
        "Hi.",
        "Tell me about the weather in Paris in spring, in one sentence please.",
        " ".join(["Summarise this list of fruit:"] + ["apple, pear, plum, cherry, grape"] * 4),
    ]
    requests = [ask(p, max_tokens=3) for p in prompts]
    alone = [await case.model.complete(rq) for rq in requests]
    together = await asyncio.wait_for(
        asyncio.gather(*(case.model.complete(rq) for rq in requests)), timeout=240
    )
    for r in together:
        check_response(r, case)
    # The prompts have different lengths: each answer is counted against its own prompt.
    assert [r.usage.input_tokens for r in together] == [r.usage.input_tokens for r in alone]
    assert len({r.usage.input_tokens for r in alone}) == 3


async def test_usable_after_aclose(case: Case):
    case.needs_answers()
    first = await case.model.complete(ask("Say yes.", max_tokens=4))
    await case.model.aclose()
    second = await case.model.complete(ask("Say yes.", max_tokens=4))
    check_response(second, case)
    assert second.usage.input_tokens == first.usage.input_tokens
    await case.model.aclose()


# --- errors ------------------------------------------------------------------------------------------


async def test_request_too_long_is_a_final_provider_error(case: Case):
    """A prompt longer than the context window: the provider's refusal, as a non-retryable ProviderError."""
    case.needs_answers()
    if not case.generates:
        pytest.skip("the scripted model has no context window: it raises only what its script says")
    prompt = " ".join(f"word{i}" for i in range(3000))  # well past the 2048-token context
    with pytest.raises(ProviderError) as err:
        await case.model.complete(ask(prompt, max_tokens=4))
    assert not err.value.retryable and err.value.status in (None, 400)
    assert err.value.provider == case.model.provider


async def test_missing_key_or_model_file_is_model_not_available(case: Case):
    if not case.unavailable:
        pytest.skip(f"the {case.kind} model needs no key, extra or file")
    for attempt in case.unavailable:
        with pytest.raises(ModelNotAvailable) as err:
            await attempt()
        assert "pip install" in str(err.value) or "API key" in str(err.value) or "gguf" in str(err.value)


def _http(case: Case) -> Callable[..., Model]:
    if case.http is None:
        pytest.skip(f"the {case.kind} model makes no HTTP request")
    return case.http


def call(model: Model, how: str, request: Request) -> Awaitable[Response]:
    """``complete`` or ``stream``: both keep the same error contract."""
    return model.complete(request) if how == "complete" else model.stream(request, _Pieces())


HOW = pytest.mark.parametrize("how", ["complete", "stream"])


@HOW
async def test_unreachable_provider_is_a_retryable_provider_error(case: Case, how: str):
    model = _http(case)(base_url=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ProviderError) as err:
        await call(model, how, ask("hi", max_tokens=4))
    assert err.value.retryable and err.value.status is None
    assert "127.0.0.1" in str(err.value)
    await model.aclose()


@HOW
async def test_timeout_is_a_retryable_provider_error(case: Case, how: str):
    """A server that takes the connection and never answers: the model's timeout, as ProviderError."""
    make = _http(case)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshakes; nobody ever reads or answers
        model = make(base_url=f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.5)
        with pytest.raises(ProviderError) as err:
            await asyncio.wait_for(call(model, how, ask("hi", max_tokens=4)), timeout=60)
        assert err.value.retryable and "timed out" in str(err.value)
        await model.aclose()


HTTP_ERRORS = [
    # status, headers, (type, retryable, retry_after)
    (400, {}, (ProviderError, False, None)),
    (401, {}, (ProviderError, False, None)),
    (404, {}, (ProviderError, False, None)),
    (429, {"retry-after": "7"}, (RateLimited, True, 7.0)),
    (500, {}, (ProviderError, True, None)),
    (503, {"retry-after-ms": "1500"}, (ProviderError, True, 1.5)),
    (529, {}, (RateLimited, True, None)),
]


@HOW
@pytest.mark.parametrize(("status", "headers", "expected"), HTTP_ERRORS, ids=[str(e[0]) for e in HTTP_ERRORS])
async def test_http_errors_are_documented_provider_errors(case: Case, http_server, status, headers, expected, how):
    make = _http(case)
    assert case.error_body is not None
    message = f"conformance says {status}"
    server = http_server(lambda *_: json_answer(status, case.error_body(status, message), **headers))
    model = make(base_url=server.url + ("/v1" if case.kind == "openai" else ""))
    kind, retryable, retry_after = expected
    with pytest.raises(ProviderError) as err:
        await call(model, how, ask("hi", max_tokens=4))
    assert type(err.value) is kind, f"{type(err.value).__name__} is not {kind.__name__}"
    assert err.value.status == status and err.value.retryable is retryable
    assert err.value.retry_after == retry_after
    assert message in str(err.value)  # the provider's own words reach the caller
    assert err.value.provider == case.model.provider
    assert len(server.requests) == 1  # a bare model never retries: gateways and policies do
    await model.aclose()


@HOW
@pytest.mark.parametrize("answer", ["not json", "bad shape"])
async def test_malformed_answers_are_provider_errors(case: Case, http_server, answer, how):
    make = _http(case)
    if answer == "not json":
        server = http_server(lambda *_: (200, {"content-type": "text/html"}, b"<html>gateway</html>"))
    else:
        server = http_server(lambda *_: json_answer(200, case.bad_answer))
    model = make(base_url=server.url + ("/v1" if case.kind == "openai" else ""))
    with pytest.raises(ModelError) as err:
        await call(model, how, ask("hi", max_tokens=4))
    assert isinstance(err.value, ProviderError) and err.value.retryable
    await model.aclose()
