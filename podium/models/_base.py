"""The model interface: :class:`Model`, and the messages, requests and responses it speaks.

Every provider (OpenAI-compatible HTTP, Anthropic, embedded llama.cpp, the scripted test model)
implements one method, :meth:`Model.complete`. Values here are frozen dataclasses made of JSON data,
so a :class:`Response` can be logged as a durable call's result and read back unchanged.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Protocol


def _tuple(obj: Any, name: str) -> None:
    # Stored payloads turn tuples into lists; keep the dataclasses hashable and equal after a round trip.
    value = getattr(obj, name)
    if not isinstance(value, tuple):
        object.__setattr__(obj, name, tuple(value))


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCall:
    """A model's request to call a tool."""

    id: str
    """Provider-given id; a tool result answers it."""
    name: str
    """The tool's name."""
    arguments: dict[str, Any] = field(default_factory=dict)
    """Arguments, as parsed JSON."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One chat message. Build with :meth:`system`, :meth:`user`, :meth:`assistant` or :meth:`tool`."""

    role: str
    """``system``, ``user``, ``assistant`` or ``tool``."""
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    """On an assistant message: the tools it asked to call."""
    tool_call_id: str | None = None
    """On a tool message: the :class:`ToolCall` it answers."""
    name: str | None = None
    """On a tool message: the tool's name."""

    def __post_init__(self) -> None:
        _tuple(self, "tool_calls")

    @classmethod
    def system(cls, content: str) -> Message:
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str = "", tool_calls: tuple[ToolCall, ...] | list[ToolCall] = ()) -> Message:
        return cls(role="assistant", content=content, tool_calls=tuple(tool_calls))

    @classmethod
    def tool(cls, content: str, *, tool_call_id: str, name: str) -> Message:
        return cls(role="tool", content=content, tool_call_id=tool_call_id, name=name)


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolSpec:
    """What a model is told about a tool: its name, what it does, and its arguments' JSON Schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments object."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    """One model call."""

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    """``auto`` (default when tools are given), ``required``, ``none``, or a tool name to force."""
    output_schema: dict[str, Any] | None = None
    """JSON Schema the answer must follow. Providers constrain decoding to it where they can."""
    output_name: str = "output"
    """Name of the output schema, where the provider wants one (OpenAI ``json_schema``, Anthropic tool)."""
    max_tokens: int | None = None
    """Upper bound of generated tokens (provider default when None)."""
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        _tuple(self, "messages")
        _tuple(self, "tools")
        _tuple(self, "stop")

    @property
    def prompt(self) -> str:
        """The text of the last user message (what scripted models and cassettes match on)."""
        for m in reversed(self.messages):
            if m.role == "user":
                return m.content
        return ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """What one call (or a roll-up of calls) consumed."""

    input_tokens: int = 0
    output_tokens: int = 0
    latency: float = 0.0
    """Seconds, wall clock, including retries and waits for rate limits."""
    cost: float | None = None
    """US dollars from the price table; None when the price is unknown."""
    calls: int = 1
    cached_tokens: int = 0
    """Input tokens the provider served from its prompt cache (counted in ``input_tokens`` too)."""

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost is None and other.cost is None else (self.cost or 0.0) + (other.cost or 0.0)
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            latency=self.latency + other.latency,
            cost=cost,
            calls=self.calls + other.calls,
            cached_tokens=self.cached_tokens + other.cached_tokens,
        )


ZERO_USAGE = Usage(calls=0)


@dataclass(frozen=True, kw_only=True, slots=True)
class Response:
    """A model's answer, with what it cost. This is what a durable model call logs."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str = "stop"
    """``stop``, ``length`` (hit max_tokens), ``tool_calls`` or ``content_filter``."""
    model: str = ""
    """The ``provider:model`` that answered (after fallbacks)."""
    usage: Usage = field(default_factory=Usage)
    trail: tuple[dict[str, Any], ...] = ()
    """What happened before this answer: failed attempts, retries and their waits, rate-limit waits,
    circuit breaker changes, fallbacks. Logged with the answer, so it is in the run's history."""
    output: Any = None
    """The validated structured output, when the call asked for one (set after validation)."""

    def __post_init__(self) -> None:
        _tuple(self, "tool_calls")
        _tuple(self, "trail")

    def replace(self, **changes: Any) -> Response:
        return dataclasses.replace(self, **changes)


class TextSink(Protocol):
    """Where a streamed answer's text goes as it is generated (see :meth:`Model.stream`)."""

    async def text(self, delta: str) -> None:
        """The next piece of the answer's text."""

    async def restart(self) -> None:
        """Forget the text sent so far: the attempt that sent it failed and the call starts again
        (a retry, or the next model of a fallback chain)."""


class Model(abc.ABC):
    """A chat model behind one method. Get one with :func:`podium.models.get_model`."""

    provider: str = ""
    """Provider name, the part before the colon in ``provider:model``."""
    name: str = ""
    """Model name, the part after the colon."""
    native_structured_output: bool = False
    """Whether the backend constrains decoding to ``output_schema`` (else it is asked in the prompt)."""
    steer_agents: bool = False
    """Whether an :class:`~podium.ai.Agent` steers this model to an end: small models call the same
    tool again and again, so a repeated identical call, or the last iteration, gets a forced final
    answer instead. True for the embedded llama.cpp models."""

    @property
    def spec(self) -> str:
        """``provider:model``."""
        return f"{self.provider}:{self.name}"

    @abc.abstractmethod
    async def complete(self, request: Request) -> Response:
        """Answer ``request``. Raises :class:`~podium.models.ProviderError` (or a subclass) on failure."""

    async def stream(self, request: Request, sink: TextSink) -> Response:
        """Answer ``request`` like :meth:`complete`, sending the text to ``sink`` as it comes.

        The returned :class:`Response` is the whole answer, the same as :meth:`complete` would give
        (it is what a durable call logs). Providers that cannot stream send the text in one piece."""
        response = await self.complete(request)
        if response.text:
            await sink.text(response.text)
        return response

    async def aclose(self) -> None:
        """Release connections or loaded weights. The model may be used again afterwards."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec}>"
