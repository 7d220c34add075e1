"""Feedback (seed 001): sentiment -> topic -> summary -> executive alert for negative clusters.

    podium run examples/scenarios/feedback.py:workflow --input '{"messages": "examples/scenarios/data/feedback_messages.jsonl"}'

Input: ``messages`` (JSON Lines, one ``{"text": ...}`` per line; a ``sentiment`` field, when every
line has one, is used only to measure accuracy); ``examples`` (JSON Lines of labelled examples,
``{"text", "sentiment", "topic"}``, that train both classifiers; default the shipped 50);
``min_cluster`` (negative messages on one topic that make an alert, default 2); ``alert_to``
(default ``exec@example.com``); ``max_tokens`` of each summary (default 60).

Sentiment (positive, neutral, negative) and topic are decided by embedding classifiers trained on
the labelled examples, each with a confidence; the LLM only writes the summary of a negative
cluster. The alert goes through the connector the client holds as ``exec_alerts`` (an ``smtp`` or
``webhook`` connector: both have ``send``); without one it is recorded in an outbox table
(``$PODIUM_HOME/scenarios-outbox.db``). A stronger writer is one line: ``PODIUM_MODEL=openai:gpt-4o-mini``.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from podium import ConfigError, Workflow, ai
from podium.classifiers import EmbeddingClassifier

try:
    from ._common import Outbox, home, path_of, read_jsonl
except ImportError:  # loaded by file path: podium run examples/scenarios/feedback.py:workflow
    sys.path.insert(0, str(Path(__file__).parent))
    from _common import Outbox, home, path_of, read_jsonl  # type: ignore[no-redef]

SENTIMENTS = ("positive", "neutral", "negative")
SAMPLE_INPUT = {"messages": "examples/scenarios/data/feedback_messages.jsonl"}
_CLASSIFIERS: dict[str, tuple[EmbeddingClassifier, EmbeddingClassifier]] = {}


def classifiers(path: str) -> tuple[EmbeddingClassifier, EmbeddingClassifier]:
    """The sentiment and topic classifiers trained on the examples at ``path`` (built once per file)."""
    if path not in _CLASSIFIERS:
        rows = read_jsonl(path, required=("text", "sentiment", "topic"))
        sentiment: dict[str, list[str]] = {s: [] for s in SENTIMENTS}
        topic: dict[str, list[str]] = defaultdict(list)
        for n, r in enumerate(rows, 1):
            if r["sentiment"] not in sentiment:
                raise ConfigError(f"{path}: example {n} has sentiment {r['sentiment']!r}; use one of {', '.join(SENTIMENTS)}")
            sentiment[r["sentiment"]].append(r["text"])
            topic[r["topic"]].append(r["text"])
        try:
            _CLASSIFIERS[path] = (EmbeddingClassifier(sentiment, method="logreg"), EmbeddingClassifier(dict(topic), method="logreg"))
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}; give examples of every sentiment and at least two topics") from None
    return _CLASSIFIERS[path]


async def _label(path: str, texts: list[str]) -> list[dict[str, Any]]:
    sentiment, topic = classifiers(path)
    out = []
    for s, t in zip(await sentiment.classify_many(texts), await topic.classify_many(texts), strict=True):
        out.append({"sentiment": s.label, "sentiment_confidence": round(s.confidence, 3),
                    "topic": t.label, "topic_confidence": round(t.confidence, 3)})
    return out


workflow = Workflow("scenario-feedback", description="sentiment -> topic -> summary -> executive alert for negative clusters")


@workflow.step
async def classify(ctx, input) -> dict[str, Any]:
    """Sentiment and topic of every message, each with its confidence (one durable call)."""
    messages = read_jsonl(path_of(input, "messages", "feedback_messages.jsonl"))
    examples = path_of(input, "examples", "feedback_examples.jsonl")
    # an empty comment (a form's blank field) says nothing: neutral, no topic, never in a negative cluster
    said = [m["text"] for m in messages if m["text"].strip()]
    labels = iter(await ctx.call(_label, examples, said, name="classify") if said else [])
    blank = {"sentiment": "neutral", "sentiment_confidence": 0.0, "topic": None, "topic_confidence": 0.0, "empty": True}
    rows = [{"text": m["text"], **(next(labels) if m["text"].strip() else blank)} for m in messages]
    out: dict[str, Any] = {"messages": rows}
    if all(m.get("sentiment") in SENTIMENTS for m in messages):
        right = sum(m["sentiment"] == r["sentiment"] for m, r in zip(messages, rows, strict=True))
        out["quality"] = {"messages": len(rows), "sentiment_accuracy": round(right / len(rows), 4)}
        if all(isinstance(m.get("topic"), str) for m in messages):
            topics = sum(m["topic"] == r["topic"] for m, r in zip(messages, rows, strict=True))
            out["quality"]["topic_accuracy"] = round(topics / len(rows), 4)
    return out


@workflow.step
async def summarise(ctx, input, classify) -> dict[str, Any]:
    """A negative cluster is a topic with at least ``min_cluster`` negative messages; the model writes
    a short summary of each for the executives (the counts and quotes beside it are exact)."""
    negative: dict[str, list[str]] = defaultdict(list)
    for m in classify["messages"]:
        if m["sentiment"] == "negative":
            negative[m["topic"]].append(m["text"])
    least = int(input.get("min_cluster", 2))
    clusters = []
    for topic, texts in sorted(negative.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len(texts) < least:
            continue
        quoted = "\n".join(f"- {t}" for t in texts[:8])
        reply = await ai.llm(ctx, f"Customers complained about {topic}:\n{quoted}\n\nSummarise the problem in one sentence.",
                             system="You write short, factual summaries for executives.",
                             max_tokens=int(input.get("max_tokens", 60)), temperature=0.0, name=f"summary_{topic}")
        clusters.append({"topic": topic, "negative": len(texts), "summary": reply.text.strip(), "quotes": texts[:3],
                         "model": reply.model})
    return {"clusters": clusters}


@workflow.step
async def alert(ctx, input, classify, summarise) -> dict[str, Any]:
    """One executive alert per negative cluster, through the ``exec_alerts`` connector."""
    sent = []
    outbox = str(input.get("outbox") or home() / "scenarios-outbox.db")
    to = str(input.get("alert_to") or "exec@example.com")
    total = len(classify["messages"])
    for c in summarise["clusters"]:
        text = (f"{c['negative']} of {total} messages are negative about {c['topic']}.\n\nSummary (written by "
                f"{c['model']}): {c['summary']}\n\nQuotes:\n" + "\n".join(f"- {q}" for q in c["quotes"]))
        connector = ctx.connector("exec_alerts", fallback=lambda: Outbox(outbox))
        await connector.call("send", {"to": to, "subject": f"Negative feedback cluster: {c['topic']}", "text": text})
        sent.append({"topic": c["topic"], "to": to, "negative": c["negative"]})
    counts = {s: sum(m["sentiment"] == s for m in classify["messages"]) for s in SENTIMENTS}
    out: dict[str, Any] = {"messages": classify["messages"], "sentiment_counts": counts,
                           "clusters": summarise["clusters"], "alerts": sent}
    if "quality" in classify:
        out["quality"] = classify["quality"]
    return out
