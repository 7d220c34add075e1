"""OpenAI-compatible chat completions over HTTP: OpenAI, vLLM, Ollama, LM Studio, llama.cpp server.

``get_model("openai:gpt-4o-mini")`` reads ``OPENAI_API_KEY`` (and ``OPENAI_BASE_URL``);
``get_model("ollama:llama3")`` talks to ``http://127.0.0.1:11434/v1``; any server works with
``base_url=``. Structured output uses ``response_format``: ``json_schema`` (OpenAI, vLLM, Ollama,
LM Studio) or ``json_object`` with a schema (llama.cpp server), chosen by ``structured=``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from ..secret import Secret
from ._base import Message, Model, Request, Response, TextSink, ToolCall, Usage
from ._errors import ModelNotAvailable, ProviderError
from ._http import ClientPool, post_json, post_sse
from ._strict import drop_optional_nulls, to_strict
from ._structured import model_json

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls"}


class OpenAIModel(Model):
    """A chat model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    :param name: the model name the server knows.
    :param base_url: the API root (default ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``).
    :param api_key: default ``$OPENAI_API_KEY`` for provider ``openai``; optional for local servers.
    :param structured: ``json_schema``, ``json_object`` (with ``schema``, for llama.cpp) or ``prompt``.
    :param timeout: seconds for one HTTP request.
    :param headers: extra HTTP headers.
    :param stream_usage: when streaming, ask for the token counts in the last chunk
        (``stream_options.include_usage``); turn off for a server that refuses the field.
    :param strict: send ``json_schema`` output with ``strict: true`` (the schema rewritten into the
        form strict mode takes; see ``_strict``). Default: on for provider ``openai``, off for
        compatible servers, which may not know the field.
    """

    native_structured_output = True

    def __init__(
        self,
        name: str,
        *,
        provider: str = "openai",
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        structured: str = "json_schema",
        timeout: float = 120.0,
        headers: dict[str, str] | None = None,
        transport: Any = None,
        max_tokens_field: str | None = None,
        strict: bool | None = None,
        stream_usage: bool = True,
    ) -> None:
        self.provider = provider
        self.name = name
        env = f"PODIUM_{provider.upper()}_BASE_URL"
        if provider == "openai":
            base_url = base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
            api_key = api_key or os.environ.get("OPENAI_API_KEY")
        base_url = os.environ.get(env) or base_url
        if not base_url:
            raise ModelNotAvailable(f"{provider}:{name} needs base_url=... (or ${env})")
        self.base_url = base_url.rstrip("/")
        # A Secret: shows as *** in reprs, logs and errors; revealed only for the request header.
        self.api_key = Secret.wrap(api_key)
        if structured not in ("json_schema", "json_object", "prompt"):
            raise ValueError(f"structured must be json_schema, json_object or prompt, got {structured!r}")
        self.structured = structured
        self.strict = provider == "openai" if strict is None else strict
        self.native_structured_output = structured != "prompt"
        # OpenAI's newer models take max_completion_tokens; compatible servers take max_tokens.
        self.max_tokens_field = max_tokens_field or (
            "max_completion_tokens" if provider == "openai" else "max_tokens"
        )
        self.headers = dict(headers or {})
        self.stream_usage = stream_usage
        # transport: an httpx transport, e.g. httpx.MockTransport to replay recorded exchanges.
        self._pool = ClientPool(timeout=timeout, **({"transport": transport} if transport else {}))

    def body(self, request: Request) -> dict[str, Any]:
        """The JSON body sent for ``request``."""
        messages = [_message(m) for m in request.messages]
        body: dict[str, Any] = {"model": self.name, "messages": messages}
        if request.max_tokens is not None:
            body[self.max_tokens_field] = request.max_tokens
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.stop:
            body["stop"] = list(request.stop)
        if request.seed is not None:
            body["seed"] = request.seed
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": t.parameters},
                }
                for t in request.tools
            ]
            choice = request.tool_choice or "auto"
            body["tool_choice"] = (
                choice
                if choice in ("auto", "required", "none")
                else {"type": "function", "function": {"name": choice}}
            )
        schema = request.output_schema
        if schema is not None:
            if self.structured == "json_schema":
                spec: dict[str, Any] = {"name": request.output_name, "schema": schema}
                if self.strict:
                    sent, strict = to_strict(schema)
                    spec = {**spec, "schema": sent if strict else schema, "strict": strict}
                body["response_format"] = {"type": "json_schema", "json_schema": spec}
            elif self.structured == "json_object":
                body["response_format"] = {"type": "json_object", "schema": schema}
            else:
                hint = f"Answer with only a JSON value that follows this JSON Schema: {json.dumps(schema)}"
                messages.insert(0, {"role": "system", "content": hint})
        return body

    def _headers(self) -> dict[str, str]:
        if self.provider == "openai" and not self.api_key and "api.openai.com" in self.base_url:
            raise ModelNotAvailable(
                f"openai:{self.name} needs an API key: set OPENAI_API_KEY (or pass api_key=...), "
                "or use a local model such as 'local:smollm2-135m'"
            )
        headers = {**self.headers}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key.reveal()}"
        return headers

    async def complete(self, request: Request) -> Response:
        headers = self._headers()
        t0 = time.monotonic()
        body = self.body(request)
        data = await post_json(self._pool, self.provider, f"{self.base_url}/chat/completions", body, headers)
        return self._finish(request, body, self.parse(data, latency=time.monotonic() - t0))

    async def stream(self, request: Request, sink: TextSink) -> Response:
        """``stream: true``: the text deltas go to ``sink``; tool calls and usage are gathered from
        the chunks into the same :class:`Response` as :meth:`complete` gives."""
        headers = self._headers()
        t0 = time.monotonic()
        body = {**self.body(request), "stream": True}
        if self.stream_usage:
            body["stream_options"] = {"include_usage": True}
        text: list[str] = []
        pieces = 0
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage: dict[str, Any] = {}
        url = f"{self.base_url}/chat/completions"
        async for event, chunk in post_sse(self._pool, self.provider, url, body, headers):
            if event == "whole":  # the server answered without streaming
                whole = self._finish(request, body, self.parse(chunk, latency=time.monotonic() - t0))
                if whole.text:
                    await sink.text(whole.text)
                return whole
            if not isinstance(chunk, dict):
                continue
            if isinstance(chunk.get("error"), dict | str):
                raise ProviderError(f"{self.provider} streamed an error: {str(chunk['error'])[:300]}",
                                    provider=self.provider, retryable=True)  # fmt: skip
            usage = chunk.get("usage") or usage
            for choice in chunk.get("choices") or ():
                delta = choice.get("delta") or {}
                if delta.get("content"):
                    pieces += 1
                    text.append(delta["content"])
                    await sink.text(delta["content"])
                for tc in delta.get("tool_calls") or ():
                    slot = calls.setdefault(int(tc.get("index") or 0), {"id": None, "name": "", "arguments": ""})
                    fn = tc.get("function") or {}
                    slot["id"] = slot["id"] or tc.get("id")
                    # The name comes whole in the call's first chunk (llama.cpp's server repeats it in each).
                    slot["name"] = slot["name"] or fn.get("name") or ""
                    slot["arguments"] += fn.get("arguments") or ""
                finish = choice.get("finish_reason") or finish
        message: dict[str, Any] = {"content": "".join(text)}
        if calls:
            message["tool_calls"] = [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for _, c in sorted(calls.items())
            ]
        estimated = not usage
        if estimated:  # a server that ignores stream_options (llama.cpp's): about a token a chunk
            chars = sum(len(m.content) for m in request.messages)
            usage = {"prompt_tokens": chars // 4, "completion_tokens": pieces + 8 * len(calls)}
        data = {"choices": [{"message": message, "finish_reason": finish}], "usage": usage}
        response = self._finish(request, body, self.parse(data, latency=time.monotonic() - t0))
        if estimated:
            note = {"model": self.spec, "note": "token counts estimated: the server streamed none"}
            response = response.replace(trail=(*response.trail, note))
        return response

    def _finish(self, request: Request, body: dict[str, Any], response: Response) -> Response:
        fmt = body.get("response_format") or {}
        if request.output_schema is not None and (fmt.get("json_schema") or {}).get("strict") and response.text:
            response = dataclasses.replace(response, text=drop_optional_nulls(response.text, request.output_schema))
        return response

    def parse(self, data: dict[str, Any], *, latency: float = 0.0) -> Response:
        """The :class:`Response` for a decoded ``chat.completion`` object."""
        try:
            choice = data["choices"][0]
            msg = choice.get("message") or {}
        except (KeyError, IndexError, TypeError) as exc:
            raise ProviderError(
                f"{self.provider} answered without choices: {str(data)[:200]}",
                provider=self.provider,
                retryable=True,
            ) from exc
        calls = []
        for i, tc in enumerate(msg.get("tool_calls") or ()):
            fn = tc.get("function") or {}
            raw = fn.get("arguments") or "{}"
            try:
                args = model_json(raw) if isinstance(raw, str) else dict(raw)
            except ValueError:
                args = {"_raw": raw}
            calls.append(ToolCall(id=tc.get("id") or f"call_{i}", name=fn.get("name", ""), arguments=args))
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        return Response(
            text=msg.get("content") or "",
            tool_calls=tuple(calls),
            finish_reason="tool_calls" if calls else _FINISH.get(finish, finish),
            model=self.spec,
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
                latency=latency,
                cached_tokens=int((usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0),
            ),
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def _message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        # Content stays a string, "" when there is none: the API also takes null or no content next to
        # tool_calls, but llama.cpp's server refuses null, and its chat templates need the field.
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in m.tool_calls
        ]
    return out
