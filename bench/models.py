"""Benchmarks of the model and tool layer.

    python bench/models.py                 # all, as a table
    python bench/models.py --json          # one JSON object per line
    python bench/models.py --only overhead --pairs 12 --tokens 32

Workloads (figures and bars in docs/benchmarks.md):
  overhead    the same completion by the embedded SmolLM2-135M, called (a) directly with
              llama_cpp.Llama.create_chat_completion, (b) through podium.ai.llm without a workflow
              (gateway: breaker, retries, accounting), (c) through ai.llm inside a workflow step on
              SQLite (each call a durable, logged sub-step). Interleaved a, b, c, a, b, c... so that
              the machine's load drifts alike on all three; medians. Bar: (c) < 5% over (a).
  classify    accuracy and latency of classifiers on the labelled intent set shipped with the tests
              (tests/ai/data/intents.json): nearest centroid and logistic regression over MiniLM
              embeddings, a hashing baseline, and SmolLM2 as an LLM classifier.
  embed       MiniLM int8 ONNX embeddings: sentences per second, batches of 32.
  structured  SmolLM2 structured output through ai.llm: a 3-field pydantic model over 20 support
              tickets; valid at the first try, valid after one repair, answers cut by the token limit.
  agent       SmolLM2 in an ai.Agent with 2 Python tools over 10 questions, with the first call as by
              default, free (auto) and forced (required): a tool called, the right tool and arguments
              first, the run ended with an answer (not at the iteration limit), the answer holds the
              tool's fact.
  chatformat  a copy of the SmolLM2 GGUF with its chat template removed, loaded with the default
              chat format: which format it gets, and right answers to 10 easy questions, beside the
              original file with its own template.
(docs/models.md#the-embedded-model-measured has the figures.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import podium  # noqa: E402
from podium import StepContext, ai  # noqa: E402
from podium.models import Gateway, get_model  # noqa: E402

PROMPT = "Write two sentences about the sea."
DATA = json.loads((ROOT / "tests" / "ai" / "data" / "intents.json").read_text())


async def overhead(pairs: int, tokens: int) -> dict[str, Any]:
    model = get_model("local:smollm2-135m")
    llama = model.llama  # type: ignore[attr-defined]
    gw = Gateway()
    guarded = gw.model(model)
    messages = [{"role": "user", "content": PROMPT}]

    def direct() -> dict[str, Any]:
        return llama.create_chat_completion(messages=messages, max_tokens=tokens, temperature=0.0)  # type: ignore[no-any-return]

    wf = podium.Workflow("bench-llm")

    @wf.step
    async def ask(ctx: StepContext) -> str:
        return (await ai.llm(ctx, PROMPT, model=guarded, max_tokens=tokens, temperature=0.0)).text

    times: dict[str, list[float]] = {"direct": [], "layer": [], "durable": []}
    out_tokens = 0
    with tempfile.TemporaryDirectory() as tmp:
        async with podium.Client(f"sqlite:///{tmp}/bench.db") as client:
            direct()  # warm up: the model is loaded and its caches are hot
            await client.run(wf)
            for _ in range(pairs):
                t0 = time.perf_counter()
                r = await asyncio.to_thread(direct)
                times["direct"].append(time.perf_counter() - t0)
                out_tokens = r["usage"]["completion_tokens"]
                t0 = time.perf_counter()
                await ai.llm(None, PROMPT, model=guarded, max_tokens=tokens, temperature=0.0)
                times["layer"].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                await client.run(wf)
                times["durable"].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    own = await machinery(200)
    return {
        "bench": "overhead",
        "pairs": pairs,
        "completion_tokens": out_tokens,
        "direct_s": round(med["direct"], 4),
        "layer_s": round(med["layer"], 4),
        "durable_s": round(med["durable"], 4),
        "layer_overhead_pct": round(100 * (med["layer"] / med["direct"] - 1), 2),
        "durable_overhead_pct": round(100 * (med["durable"] / med["direct"] - 1), 2),
        "layer_overhead_ms": round(1000 * (med["layer"] - med["direct"]), 2),
        "durable_overhead_ms": round(1000 * (med["durable"] - med["direct"]), 2),
        "tokens_per_s": round(out_tokens / med["direct"], 1),
        **own,
        "own_overhead_pct": round(100 * own["durable_us"] / 1e6 / med["direct"], 3),
        "threads": os.cpu_count(),
    }


class _InstantLlama:
    """Stands in for llama_cpp.Llama: answers at once, so that only Podium's own work is timed."""

    def tokenize(self, text: bytes, add_bos: bool = True) -> list[int]:
        return list(range(len(text) // 4))

    n_tokens = 17

    def create_chat_completion(self, **kwargs: Any) -> Any:
        if kwargs.get("stream"):  # the pieces of a streamed answer (ai.llm streams plain text in a run)
            pieces = ["The ", "sea ", "is ", "wide."]
            return iter([{"choices": [{"delta": {"content": p}, "finish_reason": None}]} for p in pieces]
                        + [{"choices": [{"delta": {}, "finish_reason": "stop"}]}])  # fmt: skip
        return {
            "choices": [{"message": {"content": "The sea is wide."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 5},
        }


async def machinery(n: int) -> dict[str, Any]:
    """Podium's own cost per model call, with the model's work taken out: the local provider (argument
    building, worker-thread hops, response), the gateway and accounting, and the durable log on SQLite."""
    import threading

    from podium.models import local

    with tempfile.TemporaryDirectory() as tmp:
        fake = Path(tmp) / "instant.gguf"
        fake.write_bytes(b"")
        local._LOADED[(str(fake), 2048, None)] = (_InstantLlama(), threading.Lock())
        model = get_model("local:instant", path=fake)
        guarded = Gateway().model(model)
        from podium.models import Message, Request

        req = Request(messages=(Message.user(PROMPT),), max_tokens=32, temperature=0.0)
        per: dict[str, float] = {}
        for label, call in (
            ("provider", lambda: model.complete(req)),
            ("layer", lambda: ai.llm(None, PROMPT, model=guarded, max_tokens=32, temperature=0.0)),
        ):
            await call()
            t0 = time.perf_counter()
            for _ in range(n):
                await call()
            per[label] = (time.perf_counter() - t0) / n
        wf = podium.Workflow("bench-calls")

        @wf.step
        async def calls(ctx: StepContext, input: bool) -> int:
            for _ in range(n):
                await ai.llm(ctx, PROMPT, model=guarded, max_tokens=32, temperature=0.0, stream=input)
            return n

        async with podium.Client(f"sqlite:///{tmp}/bench.db") as client:
            # stream=True: what a plain-text call in a run does by default (token events on the bus)
            for label, stream in (("durable_no_stream", False), ("durable", True)):
                await client.run(wf, stream)
                t0 = time.perf_counter()
                await client.run(wf, stream)
                per[label] = (time.perf_counter() - t0) / n
    return {f"{k}_us": round(v * 1e6, 1) for k, v in per.items()}


async def classify(with_llm: bool) -> list[dict[str, Any]]:
    from podium.classifiers import EmbeddingClassifier, LLMClassifier
    from podium.embeddings import get_embedder

    texts, truth = zip(*DATA["test"], strict=True)
    rows = []
    minilm = get_embedder("local:all-minilm-l6-v2")
    candidates: list[tuple[str, Any]] = [
        ("minilm-centroid", EmbeddingClassifier(DATA["train"], embedder=minilm, method="centroid")),
        ("minilm-logreg", EmbeddingClassifier(DATA["train"], embedder=minilm, method="logreg")),
        ("hash-centroid", EmbeddingClassifier(DATA["train"], embedder="hash:512", method="centroid")),
    ]
    if with_llm:
        candidates.append(
            (
                "smollm2-llm",
                LLMClassifier(
                    list(DATA["train"]), model=get_model("local:smollm2-135m"), examples=DATA["train"]
                ),
            )
        )
    for name, clf in candidates:
        if hasattr(clf, "fit"):
            await clf.fit()
        t0 = time.perf_counter()
        if isinstance(clf, EmbeddingClassifier):
            results = await clf.classify_many(list(texts))
        else:
            results = [await clf.classify(t) for t in texts]
        elapsed = time.perf_counter() - t0
        right = [r.confidence for r, t in zip(results, truth, strict=True) if r.label == t]
        wrong = [r.confidence for r, t in zip(results, truth, strict=True) if r.label != t]
        rows.append(
            {
                "bench": "classify",
                "classifier": name,
                "accuracy": round(len(right) / len(truth), 3),
                "n": len(truth),
                "classes": len(DATA["train"]),
                "train_per_class": len(next(iter(DATA["train"].values()))),
                "mean_conf_right": round(statistics.mean(right), 3) if right else None,
                "mean_conf_wrong": round(statistics.mean(wrong), 3) if wrong else None,
                "ms_per_text": round(1000 * elapsed / len(truth), 2),
            }
        )
    return rows


async def embed() -> dict[str, Any]:
    from podium.embeddings import get_embedder

    e = get_embedder("local:all-minilm-l6-v2")
    sentences = [f"{t} (variant {i})" for i in range(8) for t, _ in DATA["test"]]
    e.encode(sentences[:32])
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        await e.embed(sentences)
        best = max(best, len(sentences) / (time.perf_counter() - t0))
    return {"bench": "embed", "sentences": len(sentences), "sentences_per_s": round(best, 1)}


TICKETS = [
    "I was charged twice for my subscription this month, please fix it now!",
    "Where is my parcel? It was due last Tuesday.",
    "The app crashes every time I open the settings page.",
    "How do I change the e-mail address on my account?",
    "Do you offer a discount for teams of more than 20 people?",
    "My invoice shows the wrong VAT number.",
    "The delivery driver left my package in the rain and it is soaked.",
    "I forgot my password and the reset link does not arrive.",
    "Can I upgrade from the basic plan to the pro plan mid-month?",
    "Your website has been down for an hour, we are losing sales!",
    "I would like a refund for order 4412, the item was broken.",
    "Is there an API to export my data?",
    "Please close my account and delete my data.",
    "The tracking number you sent me does not work.",
    "I love the new dashboard, great job!",
    "We need 500 units by Friday, can you quote a price?",
    "My card was declined but the money left my bank account.",
    "The mobile app logs me out every five minutes.",
    "Can you ship to Norway?",
    "Someone else placed an order with my account, I think I was hacked!",
]


async def structured(n: int, max_tokens: int | None) -> dict[str, Any]:
    from pydantic import BaseModel

    from podium.models import OutputInvalid

    class Ticket(BaseModel):
        intent: str
        urgent: bool
        summary: str

    model = get_model("local:smollm2-135m")
    first = repaired = cut = 0
    lengths: list[int] = []
    t0 = time.perf_counter()
    for text in TICKETS[:n]:
        prompt = f"Triage this support ticket: {text}"
        try:
            r = await ai.llm(None, prompt, model=model, output=Ticket, max_tokens=max_tokens, repair=0)
            first += 1
            repaired += 1
            lengths.append(r.usage.output_tokens)
            continue
        except OutputInvalid as exc:
            cut += "Unterminated string" in str(exc) or "Expecting" in str(exc)
        try:  # the same first answer again (temperature 0), then one repair
            await ai.llm(None, prompt, model=model, output=Ticket, max_tokens=max_tokens, repair=1)
            repaired += 1
        except OutputInvalid:
            pass
    return {
        "bench": "structured",
        "model": model.spec,
        "prompts": n,
        "max_tokens": max_tokens,
        "valid_first_try": first,
        "valid_after_repair": repaired,
        "unfinished_json": cut,
        "median_output_tokens": statistics.median(lengths) if lengths else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }


ORDERS = {1042: "shipped", 2210: "delayed", 3307: "delivered", 4415: "cancelled", 5523: "packed"}
STOCK = {"KB-12": 7, "MS-40": 0, "HD-77": 31, "CB-05": 12, "SC-09": 3}


async def agent(n: int) -> list[dict[str, Any]]:
    import re

    from podium.tools import tool

    @tool
    def get_order(order_id: int) -> dict[str, Any]:
        """Look up the status of a customer's order by its number."""
        return {"order_id": order_id, "status": ORDERS.get(order_id, "unknown")}

    @tool
    def get_stock(sku: str) -> dict[str, Any]:
        """How many units of a product (by its SKU code) are in stock."""
        return {"sku": sku, "in_stock": STOCK.get(sku, 0)}

    tasks = [
        (f"What is the status of order {o}?", "get_order", {"order_id": o}, str(o), status)
        for o, status in ORDERS.items()
    ] + [(f"How many units of {k} do we have in stock?", "get_stock", {"sku": k}, k, str(v)) for k, v in STOCK.items()]
    model = get_model("local:smollm2-135m")
    rows = []
    for first in (None, "auto", "required"):  # None: the default (steered models: required)
        called = right = ended = correct = iterations = 0
        t0 = time.perf_counter()
        for question, name, arguments, key, fact in tasks[:n]:
            a = ai.Agent(
                model=model,
                instructions="You answer questions about orders and stock. Use the tools.",
                tools=[get_order, get_stock],
                first_tool_choice=first,
            )
            r = await a.run(None, question)
            called += bool(r.tool_calls)
            call = r.tool_calls[0] if r.tool_calls else None  # the tools echo their arguments
            right += (
                call is not None
                and call.name == name
                and isinstance(call.value, dict)
                and all(call.value.get(k) == v for k, v in arguments.items())
            )
            ended += r.stop_reason != "max_iterations"
            said = r.text.replace(key, "")  # the fact, not the order number or SKU repeated
            correct += r.stop_reason != "max_iterations" and bool(re.search(rf"\b{re.escape(fact)}\b", said, re.I))
            iterations += r.iterations
        rows.append(
            {
                "bench": "agent",
                "model": model.spec,
                "first_tool_choice": first or "default",
                "tasks": n,
                "called_a_tool": called,
                "right_first_call": right,
                "ended_with_an_answer": ended,
                "answer_has_the_fact": correct,
                "mean_iterations": round(iterations / n, 1),
                "seconds": round(time.perf_counter() - t0, 1),
            }
        )
    return rows


QUESTIONS = [
    ("What is the capital of France?", "paris"),
    ("What is the capital of Italy?", "rome"),
    ("What is the capital of Japan?", "tokyo"),
    ("What is the largest planet in the solar system?", "jupiter"),
    ("What colour is the sky on a clear day?", "blue"),
    ("How many days are there in a week?", "seven|7"),
    ("What is the opposite of hot?", "cold"),
    ("Which animal says meow?", "cat"),
    ("What do bees make?", "honey"),
    ("What is frozen water called?", "ice"),
]


async def chatformat() -> list[dict[str, Any]]:
    import re
    import shutil

    from podium.models import Message, Request

    original = get_model("local:smollm2-135m").path  # type: ignore[attr-defined]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        bare = Path(tmp) / "smollm2-no-template.gguf"
        shutil.copyfile(original, bare)
        data = bytearray(bare.read_bytes())
        at = data.find(b"tokenizer.chat_template")
        data[at : at + 23] = b"tokenizer.chat_templatX"  # same length: nothing else in the file moves
        bare.write_bytes(bytes(data))
        for label, path in (("gguf with its template", original), ("gguf without a template", bare)):
            model = get_model(f"local:{path}")
            right = 0
            for question, answer in QUESTIONS:
                r = await model.complete(Request(messages=(Message.user(question),), max_tokens=32, temperature=0.0))
                right += bool(re.search(answer, r.text, re.I))
            rows.append(
                {
                    "bench": "chatformat",
                    "file": label,
                    "chat_format": str(model.llama.chat_format),  # type: ignore[attr-defined]
                    "questions": len(QUESTIONS),
                    "right": right,
                }
            )
    return rows


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["overhead", "classify", "embed", "structured", "agent", "chatformat"])
    p.add_argument("--prompts", type=int, default=20, help="structured: how many tickets (up to 20)")
    p.add_argument("--max-tokens", type=int, default=0, help="structured: max_tokens (0: the default)")
    p.add_argument("--tasks", type=int, default=10, help="agent: how many questions (up to 10)")
    p.add_argument("--pairs", type=int, default=10)
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--no-llm", action="store_true", help="skip the (slow) LLM classifier")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows: list[dict[str, Any]] = []
    if args.only in (None, "embed"):
        rows.append(await embed())
    if args.only in (None, "classify"):
        rows.extend(await classify(not args.no_llm))
    if args.only in (None, "overhead"):
        rows.append(await overhead(args.pairs, args.tokens))
    if args.only in (None, "structured"):
        rows.append(await structured(args.prompts, args.max_tokens or None))
    if args.only in (None, "agent"):
        rows.extend(await agent(args.tasks))
    if args.only in (None, "chatformat"):
        rows.extend(await chatformat())
    for row in rows:
        print(json.dumps(row) if args.json else "  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    asyncio.run(main())
