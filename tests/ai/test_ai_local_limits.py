"""The embedded model must not fail silently: structured output always a finished, valid object
(bounded grammar, max_tokens fitted to it), agents on small models end with an answer, and a GGUF
without a chat template gets a format it can use (chatml) or the one asked for."""

from __future__ import annotations

import shutil

import pytest
from ai_helpers import LLAMA_SKIP, smollm2_path
from pydantic import BaseModel, Field

from podium import ai
from podium.models import Message, ModelNotAvailable, Request, ToolCall, ToolSpec, get_model
from podium.models.testing import ScriptedModel
from podium.tools import tool

needs_model = pytest.mark.skipif(bool(LLAMA_SKIP), reason=LLAMA_SKIP or "")


class Ticket(BaseModel):
    intent: str
    urgent: bool
    summary: str


class Short(BaseModel):
    code: str = Field(max_length=6)
    tags: list[str]


# -- the grammar (llama.cpp's converter, no model needed) -------------------------------------------


@pytest.fixture
def gbnf():
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'podium[local]')")
    from podium.models import _gbnf

    return _gbnf


def test_every_string_and_array_gets_a_bound_and_the_schemas_own_is_kept(gbnf):
    schema = gbnf.bounded(Short.model_json_schema(), max_string=50, max_items=4)
    assert schema["properties"]["code"]["maxLength"] == 6  # the schema's own limit
    assert schema["properties"]["tags"]["maxItems"] == 4
    assert schema["properties"]["tags"]["items"]["maxLength"] == 50
    either = gbnf.bounded({"type": ["string", "null"]}, max_string=9)
    assert either == {"anyOf": [{"type": "string", "maxLength": 9}, {"type": "null"}]}


def test_the_longest_answer_is_known_and_fits_the_callers_max_tokens(gbnf):
    g = gbnf.grammar(Ticket.model_json_schema(), max_string=100)
    assert g.max_string == 100 and g.max_tokens is not None and 400 < g.max_tokens < 600
    small = gbnf.grammar(Ticket.model_json_schema(), budget=120, max_string=100)
    assert small.max_string < 100 and small.max_tokens is not None and small.max_tokens <= 120
    assert gbnf.max_chars({"type": "object"}) is None  # free-form: no bound to promise
    assert gbnf.max_chars({"type": "string", "pattern": "a+"}) is None


def test_strings_allow_only_json_characters(gbnf):
    text = gbnf.grammar(Ticket.model_json_schema()).gbnf
    assert gbnf._CHAR in text.splitlines()  # no raw newline (invalid JSON), no \u escapes


# -- structured output with SmolLM2 ------------------------------------------------------------------


@pytest.fixture(scope="module")
def local():
    if LLAMA_SKIP:
        pytest.skip(LLAMA_SKIP)
    return get_model("local:smollm2-135m", n_threads=1)


@needs_model
@pytest.mark.parametrize(
    "ticket",
    [
        "Where is my parcel? It was due last Tuesday.",  # was: a raw newline inside the string
        "The app crashes every time I open the settings page.",  # was: an unclosed string
    ],
)
async def test_structured_output_is_a_finished_object_at_the_first_try(local, ticket):
    r = await ai.llm(None, f"Triage this support ticket: {ticket}", model=local, output=Ticket, max_tokens=60, repair=0)
    assert isinstance(r.output, Ticket) and r.finish_reason == "stop"
    assert r.usage.output_tokens <= 60


@needs_model
async def test_the_schemas_own_max_length_is_honoured(local):
    r = await ai.llm(None, "Give a product code and some tags for a red bicycle.", model=local, output=Short, repair=0)
    assert len(r.output.code) <= 6 and len(r.output.tags) <= 16


# -- agents end ---------------------------------------------------------------------------------------


@tool
def get_order(order_id: int) -> dict:
    """Look up the status of a customer's order by its number."""
    return {"order_id": order_id, "status": "shipped"}


@tool
def get_stock(sku: str) -> dict:
    """How many units of a product (by its SKU code) are in stock."""
    return {"sku": sku, "in_stock": 7}


async def test_a_steered_agent_does_not_run_a_repeated_call_and_is_made_to_answer():
    runs = []

    @tool
    def lookup(order_id: int) -> str:
        """Look an order up."""
        runs.append(order_id)
        return "shipped"

    def reply(req):
        return "It has shipped." if req.tool_choice == "none" else ToolCall(id="x", name="lookup", arguments={"order_id": 7})

    model = ScriptedModel([(None, reply)])
    r = await ai.Agent(model=model, tools=[lookup], steer=True).run(None, "where is order 7?")
    assert runs == [7]  # the second, identical call was not run
    assert (r.stop_reason, r.output, r.iterations) == ("forced_answer", "It has shipped.", 3)
    assert [q.tool_choice for q in model.requests] == ["required", None, "none"]
    assert "where is order 7?" in model.requests[-1].messages[-1].content  # asked again, to answer


async def test_a_steered_agent_answers_at_the_last_iteration_and_a_final_result_is_forced():
    calls = iter(range(100))
    model = ScriptedModel(
        [
            (lambda q: q.tool_choice == "final_result", ToolCall(id="f", name="final_result", arguments={"approve": True})),
            (None, lambda q: ToolCall(id="c", name="get_order", arguments={"order_id": next(calls)})),
        ]
    )

    class Verdict(BaseModel):
        approve: bool

    r = await ai.Agent(model=model, tools=[get_order], output=Verdict, steer=True, max_iterations=3).run(None, "go")
    assert (r.stop_reason, r.output, r.iterations) == ("forced_answer", Verdict(approve=True), 3)
    assert [q.tool_choice for q in model.requests] == ["required", "required", "final_result"]


async def test_capable_models_are_not_steered():
    loop = ScriptedModel(default=ToolCall(id="x", name="get_order", arguments={"order_id": 1}))
    assert not loop.steer_agents
    r = await ai.Agent(model=loop, tools=[get_order], max_iterations=3).run(None, "go")
    assert r.stop_reason == "max_iterations" and len(r.tool_calls) == 3


@needs_model
async def test_an_agent_on_the_embedded_model_ends_with_an_answer(local):
    agent = ai.Agent(
        model=local,
        instructions="You answer questions about orders and stock. Use the tools.",
        tools=[get_order, get_stock],
        max_iterations=4,
        max_tokens_per_call=48,
    )
    r = await agent.run(None, "What is the status of order 1042?")
    assert r.stop_reason in ("done", "forced_answer") and r.iterations <= 4
    assert r.tool_calls[0].name == "get_order" and r.tool_calls[0].value["order_id"] == 1042
    assert isinstance(r.output, str) and r.output.strip() and not r.output.lstrip().startswith("{")


@needs_model
async def test_a_forced_answer_is_words_not_a_tool_call(local):
    spec = ToolSpec(name="get_order", description="Look up an order.", parameters=get_order.parameters)
    r = await local.complete(
        Request(
            messages=(
                Message.user("Where is order 7?"),
                Message.assistant(tool_calls=[ToolCall(id="1", name="get_order", arguments={"order_id": 7})]),
                Message.tool('{"status": "shipped"}', tool_call_id="1", name="get_order"),
            ),
            tools=(spec,),
            tool_choice="none",
            max_tokens=24,
        )
    )
    assert not r.tool_calls and r.text.strip() and r.text.lstrip()[0] not in "{[\""


# -- chat formats -------------------------------------------------------------------------------------


@needs_model
def test_chat_format_option_in_the_name_or_as_a_keyword():
    assert get_model("local:smollm2-135m?chat_format=chatml").chat_format == "chatml"
    assert get_model("local:smollm2-135m", chat_format="llama-2").chat_format == "llama-2"
    m = get_model("local:smollm2-135m?max_string=40&n_ctx=1024")
    assert (m.max_string, m.n_ctx, m.chat_format) == (40, 1024, None)
    with pytest.raises(ModelNotAvailable, match="unknown option 'chatformat'.*chat_format"):
        get_model("local:smollm2-135m?chatformat=chatml")
    with pytest.raises(ModelNotAvailable, match="n_ctx='big' is not a valid int"):
        get_model("local:smollm2-135m?n_ctx=big")
    with pytest.raises(ModelNotAvailable, match="n_ctx=1000000000 is out of range; give 128 to"):
        get_model("local:smollm2-135m?n_ctx=1000000000")  # a workflow file must not size the memory


@needs_model
def test_an_unknown_chat_format_says_which_exist():
    with pytest.raises(ModelNotAvailable, match="unknown chat_format 'chatlm'.*chatml"):
        get_model("local:smollm2-135m?chat_format=chatlm")


@pytest.fixture(scope="module")
def bare_gguf(tmp_path_factory):
    """SmolLM2 with its chat template key renamed (same length, so nothing else in the file moves)."""
    if LLAMA_SKIP:
        pytest.skip(LLAMA_SKIP)
    path = tmp_path_factory.mktemp("gguf") / "no-template.gguf"
    shutil.copyfile(smollm2_path() or "", path)
    with open(path, "r+b") as f:
        data = f.read(4 << 20)  # the metadata is at the start
        at = data.find(b"tokenizer.chat_template")
        assert at > 0
        f.seek(at)
        f.write(b"tokenizer.chat_templatX")
    return path


@needs_model
async def test_a_gguf_without_a_template_gets_chatml_unless_told_otherwise(bare_gguf, local):
    assert local.prompt_format == "chat_template.default"  # the file's own template
    bare = get_model(f"local:{bare_gguf}", n_threads=1)
    assert bare.prompt_format == "chatml"  # llama-cpp-python alone would take llama-2
    r = await bare.complete(Request(messages=(Message.user("What is the capital of France?"),), max_tokens=16))
    assert "paris" in r.text.lower()
    assert get_model(f"local:{bare_gguf}?chat_format=llama-2").prompt_format == "llama-2"


@needs_model
def test_a_workflow_cannot_fill_the_process_with_model_copies():
    """Review: the loaded local models were kept for the life of the process, one per (file, n_ctx,
    chat format), and a workflow's model name can carry options from a template
    (``local:smollm2-135m?n_ctx={{ input.n }}``): each new value loaded another copy, until memory
    ran out. At most ``MAX_LOADED`` copies are kept now, the least recently used let go."""
    from podium.models import local

    path = smollm2_path()
    for n_ctx in range(256, 256 + 64 * (local.MAX_LOADED + 3), 64):
        local.load(path, n_ctx=n_ctx)
        assert len(local._LOADED) <= local.MAX_LOADED
    first = local.load(path, n_ctx=2048)
    assert local.load(path, n_ctx=2048) is first and len(local._LOADED) <= local.MAX_LOADED
