"""Step functions for ``examples/triage.yaml``: plain Python, no network, deterministic.

A YAML step names them as ``uses: examples.support:classify``; ``with:`` arguments arrive as keyword
arguments, checked against the annotations like a Python step's inputs.
"""

from __future__ import annotations

import asyncio

from podium import StepContext

_CATEGORIES = {
    "billing": ("invoice", "refund", "charge", "payment", "billing"),
    "outage": ("down", "outage", "error 500", "unavailable", "cannot log in"),
    "account": ("password", "login", "email", "account"),
}
_TIERS = {"acme": "enterprise", "globex": "pro"}


def classify(subject: str, body: str) -> dict:
    """A keyword classifier standing in for a model: category, urgency and the words that decided."""
    text = f"{subject} {body}".lower()
    scores = {cat: [w for w in words if w in text] for cat, words in _CATEGORIES.items()}
    category, hits = max(scores.items(), key=lambda kv: len(kv[1]))
    if not hits:
        category = "general"
    urgent = category == "outage" or "urgent" in text or "asap" in text
    return {"category": category, "urgent": urgent, "evidence": hits}


def lookup_customer(ctx: StepContext, email: str) -> dict:
    """A CRM lookup that times out on its first attempt (simulated); the step's retry absorbs it."""
    if ctx.attempt == 1:
        raise ConnectionError("CRM timed out (simulated)")
    domain = email.rsplit("@", 1)[-1].split(".")[0].lower()
    return {"email": email, "tier": _TIERS.get(domain, "free")}


async def scan_attachment(name: str) -> dict:
    """Checks one attachment; runs once per attachment, in parallel."""
    await asyncio.sleep(0.01)
    risky = name.lower().endswith((".exe", ".js", ".bat"))
    return {"name": name, "safe": not risky}


def draft_reply(category: str, tier: str, subject: str) -> str:
    """Drafts a reply. The templating service has no template for outages yet (it fails), so the
    workflow's fallback step answers instead."""
    if category == "outage":
        raise RuntimeError(f"no reply template for category {category!r}")
    greeting = "Dear valued customer" if tier == "enterprise" else "Hi"
    return f"{greeting}, thanks for writing about '{subject}'. Our {category} team is on it."
