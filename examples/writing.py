"""Step functions for ``examples/review_loop.yaml``: a writer and a reviewer, in a loop."""

from __future__ import annotations

_REQUIRED = ("who", "when", "where")


def write(topic: str, feedback: list[str] | None = None, draft: str = "") -> str:
    """Writes a first draft, then adds what the reviewer asked for."""
    text = draft or f"Announcement: {topic}."
    for item in feedback or []:
        text += f" {item.capitalize()}: to be confirmed."
    return text


def review(draft: str) -> dict:
    """Approves a draft that covers who, when and where; otherwise lists what is missing."""
    missing = [w for w in _REQUIRED if f"{w.capitalize()}:" not in draft]
    # One point at a time, like a patient editor: the loop runs until nothing is missing.
    return {"approved": not missing, "feedback": missing[:1], "length": len(draft)}
