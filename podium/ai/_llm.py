"""``llm``: one model call as a durable step, with structured output and a bounded repair retry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..models import Gateway, Message, Model, OutputInvalid, Request, Response, default_gateway
from ..models._gateway import FallbackModel, GuardedModel
from ..models._structured import OutputType
from ._durable import durable
from ._stream import OnText

if TYPE_CHECKING:
    from ..engine.context import StepContext
    from ..tools import Tool


def resolve_model(model: str | Sequence[str] | Model | None, gateway: Gateway | None = None) -> Model:
    """A model ready to call: named models come from the gateway, with its limits, breaker and fallbacks."""
    gw = gateway or default_gateway()
    if isinstance(model, GuardedModel | FallbackModel):
        return model
    return gw.model(model)


async def complete(
    ctx: StepContext | None,
    model: Model,
    request: Request,
    *,
    name: str,
    agent: str | None = None,
    traced: int = 0,
    stream: bool | None = False,
    on_text: OnText | None = None,
) -> Response:
    """One durable model call: ``request`` to ``model``, logged as ``name`` with its usage.

    The workflow's policy applies around it: kill switches, allowed providers and budgets are checked
    first; prompts are redacted (or kept off remote models) as it says; the live call is audited
    (model, prompt hash, tokens, cost) and charged to the day's and the entity's budgets; the answer
    is redacted and validated before the step sees it. ``traced``: how many of the request's first
    messages an earlier call of this conversation already kept for the trace (an agent's loop), so
    only the new ones are stored.

    ``stream`` (see :func:`podium.ai._stream.wanted`) sends the text as it is generated to the run's
    token topic and to ``on_text``; the logged answer stays the whole one."""
    from ..governance.enforcement import check_model
    from . import _guard, _stream

    # A call that replays its logged answer was checked (and charged) when it ran: checking it
    # again against budgets spent since, or a switch set since, would fail a resumed run.
    if ctx is None or not ctx.replaying(name):
        members = getattr(model, "models", None) or [model]
        providers = [str(getattr(m, "provider", "")) for m in members]
        await check_model(ctx, providers, agent=agent)
        request = await _guard.prepare(ctx, request, providers)
    note = request_trace(model, request, agent, since=traced)
    live = None
    if _stream.wanted(ctx, request, stream, on_text):
        live = _stream.LiveText(ctx, ctx.next_call_name(name) if ctx is not None else name, on_text)
    response = await durable(ctx, _guard.live_call(ctx, model, live), request, name=name, trace=note)
    return await _guard.check(ctx, response, name=name)


def request_trace(model: Model, request: Request, agent: str | None = None, *, since: int = 0) -> dict[str, Any]:
    """What the run trace keeps of a model call besides its answer: the messages as sent (after
    the policy's redaction; redacted again before storage), the tools offered and the settings.
    With ``since``, the first ``since`` messages are left out (``"earlier": since``): the agent's
    previous call kept them, and the trace puts them back, so a long loop stores each message once."""

    def message(m: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.name:
            out["name"] = m.name
        if m.tool_calls:
            out["tool_calls"] = [{"name": c.name, "arguments": c.arguments} for c in m.tool_calls]
        return out

    note: dict[str, Any] = {
        "kind": "model",
        "model": model.spec,
        "provider": str(getattr(model, "provider", "")),
        "messages": [message(m) for m in request.messages[since:]],
    }
    if since:
        note["earlier"] = since
    if request.tools:
        note["tools"] = [t.name for t in request.tools]
    if request.output_schema is not None:
        note["output_schema"] = request.output_name
    for key in ("tool_choice", "max_tokens", "temperature"):
        if getattr(request, key) is not None:
            note[key] = getattr(request, key)
    if agent:
        note["agent"] = agent
    return note


async def llm(
    ctx: StepContext | None,
    prompt: str | None = None,
    *,
    messages: Sequence[Message] = (),
    system: str | None = None,
    model: str | Sequence[str] | Model | None = None,
    output: Any = None,
    tools: Sequence[Tool] = (),
    tool_choice: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: Sequence[str] = (),
    seed: int | None = None,
    repair: int = 1,
    name: str = "llm",
    gateway: Gateway | None = None,
    stream: bool | None = None,
    on_text: OnText | None = None,
) -> Response:
    """Call a model from a step: ``await llm(ctx, "Summarise: ...", model="openai:gpt-4o-mini")``.

    The call is durable (logged as ``step/llm``, ``step/llm-2``...): a retried or resumed step gets
    the logged answer instead of calling the model again. Its tokens, latency and cost are logged with
    it.

    :param output: a pydantic model, dataclass, type or JSON Schema dict. The backend is constrained
        to it where it can be; the answer is validated, and an invalid one is sent back for repair
        up to ``repair`` times before :class:`~podium.models.OutputInvalid` is raised. The value is
        in ``response.output``.
    :param tools: tools the model may ask for; their calls come back in ``response.tool_calls``
        (use :class:`Agent` to run them in a loop).
    :param model: ``"provider:model"``, a fallback chain ``"a|b|c"`` or a list, or a :class:`Model`
        (default: :func:`~podium.models.default_model_spec`).
    :param stream: send the answer's text as it is generated: to the run's token events
        (``podium.tokens.<run_id>``: what ``podium run`` prints and the dashboard shows) and to
        ``on_text``. Default: plain-text answers stream, structured and tool answers do not. The
        logged answer is the whole text either way, and a replayed call does not stream again.
        A run whose policy redacts or validates answers, or redacts payloads, never streams
        (docs/models.md#streaming).
    :param on_text: called with each piece of text (a function, sync or async, or a
        :class:`~podium.models.TextSink`), also outside a workflow.
    """
    chosen = resolve_model(model, gateway)
    msgs: list[Message] = []
    if system:
        msgs.append(Message.system(system))
    msgs.extend(messages)
    if prompt is not None:
        msgs.append(Message.user(prompt))
    if not msgs:
        raise ValueError("llm() needs a prompt or messages")
    shape = OutputType(output) if output is not None else None
    request = Request(
        messages=tuple(msgs),
        tools=tuple(t.spec for t in tools),
        tool_choice=tool_choice,
        output_schema=shape.schema if shape else None,
        output_name=shape.name if shape else "output",
        max_tokens=max_tokens,
        temperature=temperature,
        stop=tuple(stop),
        seed=seed,
    )
    response = await complete(ctx, chosen, request, name=name, stream=stream, on_text=on_text)
    if shape is None or response.tool_calls:
        return response
    problems = []
    for attempt in range(repair + 1):
        try:
            return response.replace(output=shape.parse(response.text))
        except ValueError as exc:
            problems.append(str(exc))
            if attempt == repair:
                break
        request = Request(
            messages=(
                *request.messages,
                Message.assistant(response.text),
                Message.user(
                    f"That answer is not valid: {problems[-1]}. Answer again with only JSON that follows "
                    "the schema."
                ),
            ),
            output_schema=request.output_schema,
            output_name=request.output_name,
            max_tokens=max_tokens,
            temperature=temperature,
            stop=tuple(stop),
            seed=seed,
        )
        response = await complete(ctx, chosen, request, name=name, stream=stream, on_text=on_text)
    err = OutputInvalid(
        f"{response.model or chosen.spec} gave no valid {shape.name} after {repair + 1} tries: "
        + " | ".join(problems),
        details={"last_answer": response.text[:2000]},
    )
    raise err
