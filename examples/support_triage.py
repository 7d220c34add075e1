"""Support triage with models, offline and with zero keys.

A support message is classified by intent (few-shot, over local embeddings: label + confidence), an
order number in it is looked up with a tool, and a reply is drafted by a model: the embedded
SmolLM2-135M unless a key or ``PODIUM_MODEL`` says otherwise. Below the confidence threshold the
message goes to a human queue instead. The model writes; a rule checks its draft (it must state the
order's status and name no other order): a draft that does not is replaced by a reply made from the
facts, and ``written_by`` says which was sent. Every model, classifier and tool call is a durable step.

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
    draft = response.text.strip()
    problem = ungrounded(draft, order)
    if problem is None:
        return {"intent": intent, "order": order, "reply": draft, "model": response.model, "written_by": "model"}
    # The model writes; a rule checks what it wrote. A draft that does not state the facts (a small
    # model often does not) is not sent: the reply is made from the facts, and the output says why.
    return {"intent": intent, "order": order, "reply": from_facts(order), "model": response.model,
            "written_by": f"template: the model's draft {problem}", "draft": draft}  # fmt: skip


def ungrounded(draft: str, order: dict | None) -> str | None:
    """Why ``draft`` may not be sent as it is (None: it may): empty, too long, naming an order
    number other than the customer's, or (with an order looked up) not stating its status."""
    if not draft:
        return "was empty"
    if len(draft) > 600:
        return "was too long"
    numbers = set(re.findall(r"\b\d{2,}\b", draft))
    if order is not None and numbers - {str(order["order_id"])}:
        return f"named order numbers the customer did not ({', '.join(sorted(numbers))})"
    if order is not None and str(order.get("status", "")).lower() not in draft.lower():
        return f"did not say the order is {order.get('status')!r}"
    return None


def from_facts(order: dict | None) -> str:
    """A reply made from the looked-up facts alone."""
    if order is None:
        return "Thank you for your message. A colleague will look into it and reply shortly."
    if order.get("status") == "unknown order":
        return f"We could not find order {order['order_id']}. Could you check the number on your confirmation email?"
    extra = "".join(f", {k.replace('_', ' ')}: {v}" for k, v in order.items() if k not in ("order_id", "status"))
    return f"Your order {order['order_id']} is {order['status']}{extra}. Thank you for your patience."


@workflow.step(when=lambda intent: intent["confidence"] < CONFIDENT)
async def escalate(input: dict, intent: dict) -> dict:
    """Not sure what this is: a person should look (governance will pause here)."""
    return {"intent": intent, "escalated": True, "message": input["message"]}


if __name__ == "__main__":
    import json
    import sys

    message = " ".join(sys.argv[1:]) or "Where is my order 42? It has not arrived."
    print(json.dumps(podium.run(workflow, {"message": message}), indent=2))
