"""Anthropic's Messages API over HTTP (``POST /v1/messages``).

``get_model("anthropic:claude-3-5-haiku-latest")`` reads ``ANTHROPIC_API_KEY``. Structured output
uses tool use: the output schema becomes a tool that the model is made to call, and its input is
the answer.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ..secret import Secret
from ._base import Message, Model, Request, Response, TextSink, ToolCall, Usage
from ._errors import ModelNotAvailable, ProviderError
from ._http import ClientPool, post_json, post_sse
from ._structured import model_json

API_VERSION = "2023-06-01"
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls"}


class AnthropicModel(Model):
    """A Claude model. ``max_tokens`` is required by the API: ``default_max_tokens`` fills it in."""

    native_structured_output = True

    def __init__(
        self,
        name: str,
        *,
        provider: str = "anthropic",
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        timeout: float = 120.0,
        default_max_tokens: int = 1024,
        headers: dict[str, str] | None = None,
        transport: Any = None,
    ) -> None:
        self.provider = provider
        self.name = name
        self.base_url = (
            base_url or os.environ.get("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"
        ).rstrip("/")
        # A Secret: shows as *** in reprs, logs and errors; revealed only for the request header.
        self.api_key = Secret.wrap(api_key or os.environ.get("ANTHROPIC_API_KEY"))
        self.default_max_tokens = default_max_tokens
        self.headers = dict(headers or {})
        # transport: an httpx transport, e.g. httpx.MockTransport to replay recorded exchanges.
        self._pool = ClientPool(timeout=timeout, **({"transport": transport} if transport else {}))

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        messages: list[dict[str, Any]] = []
        for m in request.messages:
            if m.role == "system":
                continue
            role, blocks = _blocks(m)
            if messages and messages[-1]["role"] == role and role == "user" and m.role == "tool":
                messages[-1]["content"].extend(blocks)  # results of parallel tool calls go in one turn
            else:
                messages.append({"role": role, "content": blocks})
        body: dict[str, Any] = {
            "model": self.name,
            "max_tokens": request.max_tokens or self.default_max_tokens,
            "messages": messages,
        }
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        tools = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
        choice = request.tool_choice
        if request.output_schema is not None:
            tools.append(
                {
                    "name": request.output_name,
                    "description": "Give the final answer with this tool.",
                    "input_schema": request.output_schema,
                }
            )
            if not request.tools:
                choice = request.output_name
        if tools:
            body["tools"] = tools
            if choice == "required":
                body["tool_choice"] = {"type": "any"}
            elif choice == "none":
                body["tool_choice"] = {"type": "none"}
            elif choice and choice != "auto":
                body["tool_choice"] = {"type": "tool", "name": choice}
        return body

    def _headers(self) -> dict[str, str]:
        if not self.api_key:
            raise ModelNotAvailable(
                f"anthropic:{self.name} needs an API key: set ANTHROPIC_API_KEY (or pass api_key=...), "
                "or use a local model such as 'local:smollm2-135m'"
            )
        return {"x-api-key": self.api_key.reveal(), "anthropic-version": API_VERSION, **self.headers}

    async def stream(self, request: Request, sink: TextSink) -> Response:
        """``stream: true``: text deltas go to ``sink``; the events are gathered into the same
        ``message`` that :meth:`complete` reads (tool inputs from their ``input_json_delta`` parts)."""
        headers = self._headers()
        t0 = time.monotonic()
        body = {**self.body(request), "stream": True}
        message: dict[str, Any] = {"content": [], "usage": {}}
        partial: dict[int, list[str]] = {}
        url = f"{self.base_url}/v1/messages"
        async for event, data in post_sse(self._pool, self.provider, url, body, headers):
            if event == "whole":  # the server answered without streaming
                whole = self.parse(data if isinstance(data, dict) else {}, request, latency=time.monotonic() - t0)
                if whole.text:
                    await sink.text(whole.text)
                return whole
            kind = data.get("type", event) if isinstance(data, dict) else event
            if kind == "error":
                raise ProviderError(f"anthropic streamed {str(data)[:300]}", provider=self.provider, retryable=True)
            if kind == "message_start":
                start = data.get("message") or {}
                message["usage"] = dict(start.get("usage") or {})
            elif kind == "content_block_start":
                message["content"].append(dict(data.get("content_block") or {}))
            elif kind == "content_block_delta" and message["content"]:
                index = int(data.get("index", len(message["content"]) - 1))
                block = message["content"][min(index, len(message["content"]) - 1)]
                delta = data.get("delta") or {}
                if delta.get("type") == "text_delta":
                    block["text"] = block.get("text", "") + delta.get("text", "")
                    await sink.text(delta.get("text", ""))
                elif delta.get("type") == "input_json_delta":
                    partial.setdefault(index, []).append(delta.get("partial_json", ""))
            elif kind == "message_delta":
                message["stop_reason"] = (data.get("delta") or {}).get("stop_reason")
                message["usage"].update(data.get("usage") or {})
        for index, pieces in partial.items():
            try:
                message["content"][index]["input"] = model_json("".join(pieces) or "{}")
            except (ValueError, IndexError) as exc:
                raise ProviderError(
                    f"anthropic streamed a tool input that is not JSON: {''.join(pieces)[:200]!r}",
                    provider=self.provider,
                    retryable=True,
                ) from exc
        return self.parse(message, request, latency=time.monotonic() - t0)

    async def complete(self, request: Request) -> Response:
        headers = self._headers()
        t0 = time.monotonic()
        data = await post_json(
            self._pool, self.provider, f"{self.base_url}/v1/messages", self.body(request), headers
        )
        return self.parse(data, request, latency=time.monotonic() - t0)

    def parse(self, data: dict[str, Any], request: Request, *, latency: float = 0.0) -> Response:
        """The :class:`Response` for a decoded Messages API ``message`` object."""
        if data.get("type") == "error" or "content" not in data:
            raise ProviderError(
                f"anthropic answered {str(data)[:300]}", provider=self.provider, retryable=True
            )
        texts, calls = [], []
        output = None
        for block in data["content"]:
            kind = block.get("type")
            if kind == "text":
                texts.append(block.get("text", ""))
            elif kind == "tool_use":
                if request.output_schema is not None and block.get("name") == request.output_name:
                    output = block.get("input")
                else:
                    calls.append(
                        ToolCall(id=block["id"], name=block["name"], arguments=block.get("input") or {})
                    )
        usage = data.get("usage") or {}
        stop = data.get("stop_reason") or "end_turn"
        text = json.dumps(output) if output is not None else "".join(texts)
        return Response(
            text=text,
            tool_calls=tuple(calls),
            finish_reason="tool_calls"
            if calls
            else ("stop" if output is not None else _FINISH.get(stop, stop)),
            model=self.spec,
            usage=Usage(
                input_tokens=int(usage.get("input_tokens") or 0)
                + int(usage.get("cache_creation_input_tokens") or 0)
                + int(usage.get("cache_read_input_tokens") or 0),
                output_tokens=int(usage.get("output_tokens") or 0),
                latency=latency,
                cached_tokens=int(usage.get("cache_read_input_tokens") or 0),
            ),
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _blocks(m: Message) -> tuple[str, list[dict[str, Any]]]:
    if m.role == "tool":
        return "user", [{"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}]
    blocks: list[dict[str, Any]] = []
    if m.content:
        blocks.append({"type": "text", "text": m.content})
    for c in m.tool_calls:
        blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments})
    return m.role, blocks
