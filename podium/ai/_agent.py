"""Agents: a model, instructions and tools in a loop, each model and tool call a durable step."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import ZERO_USAGE, Gateway, Message, Model, Request, Response, ToolCall, ToolSpec, Usage
from ..models._structured import OutputType
from ..tools import Tool, ToolResult, Toolset, resolve_tools
from ..tools._control import without_control
from ._durable import durable
from ._llm import complete, resolve_model
from ._tools import TOOL_RETRY, call_key_for, live_tool

if TYPE_CHECKING:
    from ..engine.context import StepContext

FINAL = "final_result"


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentTurn:
    """One iteration of an agent: the model's answer and the results of the tools it called."""

    iteration: int
    response: Response
    tool_results: tuple[ToolResult, ...] = ()
    usage: Usage = ZERO_USAGE
    """Usage of the whole run so far."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AgentResult:
    """What an agent run ended with."""

    output: Any
    """The final answer: text, or the validated structured output."""
    stop_reason: str
    """``done``, ``forced_answer`` (a steered model was made to answer, see :attr:`Agent.steer`),
    ``stop_condition``, ``max_iterations``, ``max_tool_calls`` or ``max_tokens``."""
    iterations: int
    usage: Usage
    messages: tuple[Message, ...] = ()
    tool_calls: tuple[ToolResult, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        return self.output if isinstance(self.output, str) else json.dumps(self.output, default=str)


@dataclass(kw_only=True)
class Agent:
    """A model + instructions + tools loop: ``result = await agent.run(ctx, "question")``.

    Each iteration asks the model; if it calls tools, they run and their results go back to it. It
    ends when the model answers without calling a tool (``done``), when ``stop(turn)`` is true, after
    ``max_iterations`` or ``max_tool_calls``, or once ``max_tokens`` (input + output, all calls) are spent. Every model call
    (``step/NAME.model``) and tool call (``step/NAME.TOOL``) is durable, so a resumed agent does not
    repeat finished calls.

    :param tools: :class:`~podium.tools.Tool`s, typed functions, or :class:`~podium.tools.Toolset`s
        such as an MCP server.
    :param output: a type or JSON Schema for the final answer, given through a ``final_result`` tool;
        an invalid one is sent back to the model to fix.
    """

    model: str | Sequence[str] | Model | None = None
    instructions: str = ""
    tools: Sequence[Tool | Toolset | Callable[..., Any]] = ()
    output: Any = None
    max_iterations: int = 8
    max_tool_calls: int | None = 32
    """Tool calls one run of the agent may make, all iterations together (None: no bound). One
    answer may ask for any number of calls (an injected instruction, a looping model): those past
    the bound are not run, the model is told why, and the run ends (``stop_reason="max_tool_calls"``)."""
    max_tokens: int | None = None
    max_tokens_per_call: int | None = 512
    stop: Callable[[AgentTurn], bool] | None = None
    temperature: float | None = None
    first_tool_choice: str | None = None
    """Tool choice of the first model call: ``required`` makes the model look something up before it
    answers (small models otherwise tend to answer at once), or a tool name to force. None: ``auto``,
    or ``required`` for a steered model that has tools."""
    steer: bool | None = None
    """Steer a small model to an end. Small models call the same tool again and again, or never call
    one: steered, the first call must use a tool (unless ``first_tool_choice`` says otherwise), a
    call identical to an earlier one is not run again, and the turn after it (and the last
    iteration) must answer: no tools, or only ``final_result``. The run then ends with
    ``stop_reason="forced_answer"``. None: as the model says (``Model.steer_agents``, true for the
    embedded ``local:`` models); capable models are not steered."""
    name: str = "agent"
    gateway: Gateway | None = None
    tool_retry: Any = TOOL_RETRY
    description: str = ""
    """What this agent is for (a router's LLM reads it)."""

    async def run(
        self, ctx: StepContext | None, input: Any, *, history: Sequence[Message] = ()
    ) -> AgentResult:
        """Run the loop on ``input`` (text, or anything JSON) after earlier ``history``."""
        model = resolve_model(self.model, self.gateway)
        # Never a control power (decide_approval from Podium's own MCP server, say): an agent
        # must not be able to approve its own requests or change its policy.
        tools = without_control(await resolve_tools(self.tools))
        shape = OutputType(self.output) if self.output is not None else None
        specs = [t.spec for t in tools.values()]
        if shape is not None:
            specs.append(ToolSpec(name=FINAL, description="Give the final answer.", parameters=shape.schema))
        messages: list[Message] = []
        if self.instructions:
            messages.append(Message.system(self.instructions))
        messages.extend(history)
        first = len(messages)
        messages.append(Message.user(input if isinstance(input, str) else json.dumps(input, default=str)))
        usage = ZERO_USAGE
        results: list[ToolResult] = []
        steer = bool(getattr(model, "steer_agents", False)) if self.steer is None else self.steer
        steer = steer and bool(specs)
        seen: set[str] = set()
        force = False  # this turn must answer (steered: after a repeated call, or the last iteration)
        traced = 0  # messages the trace already holds from this loop's earlier model calls
        made = 0  # tool calls run (or replayed), for max_tool_calls
        from ..governance.enforcement import check_agent, tool_call_bound

        bound = tool_call_bound(ctx, self.name, self.max_tool_calls)  # the lowest of the agent's and its policies'

        for i in range(self.max_iterations):
            if ctx is None or not ctx.replaying(f"{self.name}.model"):
                await check_agent(ctx, self.name)
            budget = self.max_tokens_per_call
            if self.max_tokens is not None:
                left = self.max_tokens - usage.total_tokens
                budget = left if budget is None else min(budget, left)
            force = force or (steer and i > 0 and i == self.max_iterations - 1)
            if force:  # the question again: a small model has lost it under the tool calls by now
                messages.append(Message.user(_ANSWER_NOW.format(question=messages[first].content)))
            request = Request(
                messages=tuple(messages),
                tools=tuple(specs),
                tool_choice=self._choice(i, shape, steer, force),
                max_tokens=budget,
                temperature=self.temperature,
            )
            response = await complete(ctx, model, request, name=f"{self.name}.model", agent=self.name, traced=traced)
            traced = len(request.messages)
            usage = usage + response.usage
            keys = [_call_key(c) for c in response.tool_calls if c.name != FINAL]
            if steer and keys and all(k in seen for k in keys):
                # The same call again: its result is already above. Not run twice; the next turn answers.
                force = True
                if self.max_tokens is not None and usage.total_tokens >= self.max_tokens:
                    return self._result(response.text, "max_tokens", i + 1, usage, messages, results)
                continue
            seen.update(keys)
            messages.append(Message.assistant(response.text, response.tool_calls))
            turn_results: list[ToolResult] = []
            final: Any = _NOTHING
            for call in response.tool_calls:
                if call.name != FINAL and bound is not None and made >= bound:
                    result, value = _over(call, bound), _NOTHING
                else:
                    made += call.name != FINAL
                    result, value = await self._tool(ctx, tools, call, shape)
                if value is not _NOTHING:
                    final = value
                turn_results.append(result)
                messages.append(Message.tool(result.text, tool_call_id=call.id, name=call.name))
            results.extend(turn_results)
            turn = AgentTurn(iteration=i, response=response, tool_results=tuple(turn_results), usage=usage)
            end = None
            if final is not _NOTHING:
                end, output = ("forced_answer" if force else "done"), final
            elif not response.tool_calls and shape is None:
                end, output = ("forced_answer" if force else "done"), response.text
            elif bound is not None and any(_is_over(t) for t in turn_results):
                end, output = "max_tool_calls", response.text
            elif self.stop is not None and self.stop(turn):
                end, output = "stop_condition", response.text
            elif self.max_tokens is not None and usage.total_tokens >= self.max_tokens:
                end, output = "max_tokens", response.text
            if end is not None:
                return self._result(output, end, i + 1, usage, messages, results)
        return self._result(
            messages[-1].content if messages[-1].role == "assistant" else None,
            "max_iterations",
            self.max_iterations,
            usage,
            messages,
            results,
        )

    def _choice(self, i: int, shape: OutputType | None, steer: bool, force: bool) -> str | None:
        if force:
            return FINAL if shape is not None else "none"
        if shape is not None:
            return "required"
        if i == 0:
            return self.first_tool_choice or ("required" if steer else None)
        return None

    @staticmethod
    def _result(
        output: Any, end: str, iterations: int, usage: Usage, messages: list[Message], results: list[ToolResult]
    ) -> AgentResult:
        return AgentResult(
            output=output,
            stop_reason=end,
            iterations=iterations,
            usage=usage,
            messages=tuple(messages),
            tool_calls=tuple(results),
        )

    async def _tool(
        self, ctx: StepContext | None, tools: dict[str, Tool], call: ToolCall, shape: OutputType | None
    ) -> tuple[ToolResult, Any]:
        if shape is not None and call.name == FINAL:
            try:
                value = shape.parse(json.dumps(call.arguments))
            except ValueError as exc:
                return ToolResult(
                    name=FINAL, call_id=call.id, ok=False, error=f"invalid final result: {exc}"
                ), _NOTHING
            return ToolResult(name=FINAL, call_id=call.id, value=call.arguments), value
        tool = tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(tools)) or "none"
            error = f"there is no tool named {call.name!r}; tools: {known}"
            return ToolResult(name=call.name, call_id=call.id, ok=False, error=error), _NOTHING
        from ..governance.enforcement import check_tool
        from ..governance.policy import PolicyViolation
        from ._tools import other_names

        arguments = dict(call.arguments)
        try:
            if ctx is not None and not ctx.replaying(f"{self.name}.{call.name}"):  # checked when it ran
                arguments = await check_tool(
                    ctx, call.name, arguments, agent=self.name, call=f"{self.name}.{call.name}",
                    connector=getattr(tool, "connector_call", None), deferred=getattr(tool, "deferred_calls", None),
                    also=other_names(tool),
                )
        except PolicyViolation as exc:  # refused even though the model asked; the model is told why
            return ToolResult(name=call.name, call_id=call.id, ok=False, error=str(exc)), _NOTHING
        result = await durable(
            ctx,
            live_tool(ctx),
            tool,
            arguments,
            call.id,
            self.tool_retry,
            call_key_for(ctx, f"{self.name}.{call.name}"),  # the same on every retry and resume of this call
            name=f"{self.name}.{call.name}",
            trace={"kind": "tool", "tool": call.name, "arguments": arguments, "agent": self.name},
        )
        return result, _NOTHING


_ANSWER_NOW = "{question} Answer in one sentence with what the tools returned."


_OVER = "not run: this agent's limit of {} tool calls (max_tool_calls) is reached; answer with what you have"


def _over(call: ToolCall, limit: int) -> ToolResult:
    return ToolResult(name=call.name, call_id=call.id, ok=False, error=_OVER.format(limit))


def _is_over(result: ToolResult) -> bool:
    return not result.ok and (result.error or "").endswith("(max_tool_calls) is reached; answer with what you have")


def _call_key(call: ToolCall) -> str:
    return json.dumps([call.name, call.arguments], sort_keys=True, default=str)


class _Nothing:
    pass


_NOTHING: Any = _Nothing()
