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

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
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
        local._LOADED[(str(fake), 2048)] = (_InstantLlama(), threading.Lock())
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
        async def calls(ctx: StepContext) -> int:
            for _ in range(n):
                await ai.llm(ctx, PROMPT, model=guarded, max_tokens=32, temperature=0.0)
            return n

        async with podium.Client(f"sqlite:///{tmp}/bench.db") as client:
            await client.run(wf)
            t0 = time.perf_counter()
            await client.run(wf)
            per["durable"] = (time.perf_counter() - t0) / n
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


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["overhead", "classify", "embed"])
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
    for row in rows:
        print(json.dumps(row) if args.json else "  ".join(f"{k}={v}" for k, v in row.items()))


if __name__ == "__main__":
    asyncio.run(main())
