"""Test your workflows offline: a :class:`ScriptedModel` that answers by rule, and :class:`Cassette`
recordings of real model and tool calls, replayed without a network.

>>> model = ScriptedModel([
...     ("refund", "I have refunded your order."),                 # prompt contains "refund"
...     (re.compile(r"order #\\d+"), ToolCall(id="1", name="lookup", arguments={"id": 7})),
...     (lambda req: req.output_schema is not None, {"label": "billing"}),   # structured answer
... ], default="OK")
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import _serde
from ._base import Model, Request, Response, TextSink, ToolCall, Usage
from ._errors import CassetteMiss, ModelError

Match = str | re.Pattern[str] | Callable[[Request], bool] | None


def _matches(match: Match, request: Request) -> bool:
    if match is None:
        return True
    if isinstance(match, str):
        return match.lower() in request.prompt.lower()
    if isinstance(match, re.Pattern):
        return match.search(request.prompt) is not None
    return bool(match(request))


def _tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


class ScriptedModel(Model):
    """Answers each request with the reply of the first rule that matches it (deterministic).

    A rule is ``(match, reply)``. ``match`` is a substring of the last user message
    (case-insensitive), a compiled regular expression searched in it, a function of the
    :class:`Request`, or None (always). ``reply`` is a string, a dict or list (sent as JSON: a
    structured answer), a :class:`ToolCall` or a list of them, a :class:`Response`, an exception
    (raised: to test retries, breakers and fallbacks), or a function of the request returning one of
    these. A list of replies (``[RateLimited(...), "ok"]``) is played in order, its last one repeating.

    ``requests`` keeps every request received, for assertions.
    """

    def __init__(
        self,
        rules: Sequence[tuple[Match, Any]] = (),
        *,
        default: Any = "OK",
        name: str = "scripted",
        provider: str = "scripted",
    ) -> None:
        self.provider = provider
        self.name = name
        self.native_structured_output = True
        self._rules: list[tuple[Match, Iterator[Any] | None, Any]] = []
        for match, reply in rules:
            if isinstance(reply, list) and not all(isinstance(r, ToolCall) for r in reply):
                self._rules.append((match, iter(reply), reply[-1] if reply else None))
            else:
                self._rules.append((match, None, reply))
        self.default = default
        self.requests: list[Request] = []
        self._lock = threading.Lock()

    def _pick(self, request: Request) -> Any:
        with self._lock:
            for i, (match, seq, last) in enumerate(self._rules):
                if _matches(match, request):
                    if seq is None:
                        return last
                    nxt = next(seq, _END)
                    if nxt is _END:
                        self._rules[i] = (match, None, last)
                        return last
                    return nxt
        return self.default

    async def complete(self, request: Request) -> Response:
        self.requests.append(request)
        reply = self._pick(request)
        if callable(reply) and not isinstance(reply, type):
            reply = reply(request)
            if asyncio.iscoroutine(reply):
                reply = await reply
        if isinstance(reply, BaseException):
            raise reply
        if isinstance(reply, Response):
            return reply if reply.model else reply.replace(model=self.spec)
        calls: tuple[ToolCall, ...] = ()
        text = ""
        if isinstance(reply, ToolCall):
            calls = (reply,)
        elif isinstance(reply, list) and reply and all(isinstance(r, ToolCall) for r in reply):
            calls = tuple(reply)
        elif isinstance(reply, str):
            text = reply
        else:
            text = json.dumps(reply)
        prompt = sum(_tokens(m.content) for m in request.messages)
        return Response(
            text=text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else "stop",
            model=self.spec,
            usage=Usage(input_tokens=prompt, output_tokens=_tokens(text) + 8 * len(calls)),
        )

    async def stream(self, request: Request, sink: TextSink) -> Response:
        """The scripted answer, its text sent word by word (a word and the spaces after it)."""
        response = await self.complete(request)
        for piece in re.findall(r"\S+\s*|\s+", response.text):
            await sink.text(piece)
        return response


_END = object()


def _key(kind: str, name: str, payload: Any) -> str:
    blob = json.dumps([kind, name, payload], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class Cassette:
    """Records real model and tool calls to a JSON file, and replays them offline.

    ``mode`` (default ``$PODIUM_CASSETTE`` or ``replay``):

    - ``replay``: answer from the file; a request not in it raises :class:`CassetteMiss`;
    - ``record``: call for real and (re)write every answer;
    - ``auto``: replay what is recorded, call for real and record the rest.

    Requests are matched by content (messages, tools, schema, options), so a recording survives
    reordering. Wrap what your workflow uses: ``model = cassette.model(get_model("openai:gpt-4o-mini"))``,
    ``tool = cassette.tool(search)``; call :meth:`save` (or use ``with cassette:``) after recording.
    """

    def __init__(self, path: str | os.PathLike[str], *, mode: str | None = None) -> None:
        self.path = Path(path)
        self.mode = mode or os.environ.get("PODIUM_CASSETTE", "replay")
        if self.mode not in ("replay", "record", "auto"):
            raise ValueError(f"cassette mode must be replay, record or auto, got {self.mode!r}")
        self.entries: dict[str, dict[str, Any]] = {}
        if self.path.exists() and self.mode != "record":
            for e in json.loads(self.path.read_text()).get("interactions", []):
                self.entries[e["key"]] = e
        self.dirty = False
        self.hits = 0
        self.misses = 0

    def __enter__(self) -> Cassette:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.save()

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = {"version": 1, "interactions": sorted(self.entries.values(), key=lambda e: e["seq"])}
        self.path.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n")
        self.dirty = False

    async def play(self, kind: str, name: str, payload: Any, real: Callable[[], Any]) -> Any:
        """The recorded answer to ``payload``, or the real one (recorded)."""
        key = _key(kind, name, payload)
        entry = self.entries.get(key)
        if entry is not None and self.mode != "record":
            self.hits += 1
            if "error" in entry:
                raise ModelError(entry["error"]["message"])
            return _serde.loads(entry["answer"])
        if self.mode == "replay":
            self.misses += 1
            raise CassetteMiss(
                f"cassette {self.path} has no recording of this {kind} call to {name} "
                f"(key {key}); record it with PODIUM_CASSETTE=record (or auto) and a real {kind}"
            )
        answer = real()
        if asyncio.iscoroutine(answer):
            answer = await answer
        self.entries[key] = {
            "seq": len(self.entries),
            "key": key,
            "kind": kind,
            "name": name,
            "request": payload,
            "answer": _serde.dumps(answer),
        }
        self.dirty = True
        return answer

    def model(self, model: Model) -> Model:
        """``model``, recorded or replayed through this cassette."""
        return _CassetteModel(model, self)

    def tool(self, tool: Any) -> Any:
        """``tool`` (a :class:`~podium.tools.Tool` or a typed function), recorded or replayed."""
        from ..tools import as_tool
        from ..tools._base import Tool

        inner = as_tool(tool)
        cassette = self

        class _CassetteTool(Tool):
            name = inner.name
            description = inner.description
            parameters = inner.parameters

            async def call(self, arguments: dict[str, Any]) -> Any:
                return await cassette.play("tool", inner.name, arguments, lambda: inner.call(arguments))

        return _CassetteTool()


class _CassetteModel(Model):
    def __init__(self, inner: Model, cassette: Cassette) -> None:
        self.inner = inner
        self.cassette = cassette
        self.provider = inner.provider
        self.name = inner.name
        self.native_structured_output = inner.native_structured_output

    async def complete(self, request: Request) -> Response:
        result = await self.cassette.play(
            "model", self.inner.spec, asdict(request), lambda: self.inner.complete(request)
        )
        return result

    async def aclose(self) -> None:
        await self.inner.aclose()
