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
from ._tools import TOOL_RETRY, live_tool

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
    """``done``, ``stop_condition``, ``max_iterations`` or ``max_tokens``."""
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
    ``max_iterations``, or once ``max_tokens`` (input + output, all calls) are spent. Every model call
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
    max_tokens: int | None = None
    max_tokens_per_call: int | None = 512
    stop: Callable[[AgentTurn], bool] | None = None
    temperature: float | None = None
    first_tool_choice: str | None = None
    """Tool choice of the first model call: ``required`` makes the model look something up before it
    answers (small models otherwise tend to answer at once), or a tool name to force."""
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
        messages.append(Message.user(input if isinstance(input, str) else json.dumps(input, default=str)))
        usage = ZERO_USAGE
        results: list[ToolResult] = []
        from ..governance.enforcement import check_agent

        for i in range(self.max_iterations):
            if ctx is None or not ctx.replaying(f"{self.name}.model"):
                await check_agent(ctx, self.name)
            budget = self.max_tokens_per_call
            if self.max_tokens is not None:
                left = self.max_tokens - usage.total_tokens
                budget = left if budget is None else min(budget, left)
            request = Request(
                messages=tuple(messages),
                tools=tuple(specs),
                tool_choice="required" if shape is not None else (self.first_tool_choice if i == 0 else None),
                max_tokens=budget,
                temperature=self.temperature,
            )
            response = await complete(ctx, model, request, name=f"{self.name}.model", agent=self.name)
            usage = usage + response.usage
            messages.append(Message.assistant(response.text, response.tool_calls))
            turn_results: list[ToolResult] = []
            final: Any = _NOTHING
            for call in response.tool_calls:
                result, value = await self._tool(ctx, tools, call, shape)
                if value is not _NOTHING:
                    final = value
                turn_results.append(result)
                messages.append(Message.tool(result.text, tool_call_id=call.id, name=call.name))
            results.extend(turn_results)
            turn = AgentTurn(iteration=i, response=response, tool_results=tuple(turn_results), usage=usage)
            end = None
            if final is not _NOTHING:
                end, output = "done", final
            elif not response.tool_calls and shape is None:
                end, output = "done", response.text
            elif self.stop is not None and self.stop(turn):
                end, output = "stop_condition", response.text
            elif self.max_tokens is not None and usage.total_tokens >= self.max_tokens:
                end, output = "max_tokens", response.text
            if end is not None:
                return AgentResult(
                    output=output,
                    stop_reason=end,
                    iterations=i + 1,
                    usage=usage,
                    messages=tuple(messages),
                    tool_calls=tuple(results),
                )
        return AgentResult(
            output=messages[-1].content if messages[-1].role == "assistant" else None,
            stop_reason="max_iterations",
            iterations=self.max_iterations,
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

        arguments = dict(call.arguments)
        try:
            if ctx is not None and not ctx.replaying(f"{self.name}.{call.name}"):  # checked when it ran
                arguments = await check_tool(ctx, call.name, arguments, agent=self.name, call=f"{self.name}.{call.name}")
        except PolicyViolation as exc:  # refused even though the model asked; the model is told why
            return ToolResult(name=call.name, call_id=call.id, ok=False, error=str(exc)), _NOTHING
        result = await durable(
            ctx,
            live_tool(ctx),
            tool,
            arguments,
            call.id,
            self.tool_retry,
            name=f"{self.name}.{call.name}",
        )
        return result, _NOTHING


class _Nothing:
    pass


_NOTHING: Any = _Nothing()
