"""What the support and feedback classifiers' confidence means on text they never saw: accuracy per
confidence band over the fresh ticket and message sets of the unseen-data rounds (docs/scenarios.md).
Feedback messages mostly in words the classifiers do not know (another language) are left out: they go
to a person whatever their confidence. ``python tests/scenarios/data/fourth/calibration.py``."""
from __future__ import annotations

import asyncio
import itertools
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from examples.scenarios import feedback, support  # noqa: E402
from examples.scenarios._common import FAMILIAR, path_of, read_jsonl  # noqa: E402

DATA = ROOT / "tests" / "scenarios" / "data"
FEEDBACK = ["feedback_fresh.jsonl", "feedback_fresh_mixed.jsonl", "third/feedback_messages.jsonl", "fourth/feedback_messages.jsonl"]
TICKETS = ["support_fresh_tickets.jsonl", "third/support_tickets.jsonl", "fourth/support_tickets.jsonl"]
EDGES = (0.0, 0.45, 0.55, 0.7, 0.85, 1.01)


def bands(pairs: list[tuple[float, bool]]) -> list[dict]:
    out = []
    for low, high in itertools.pairwise(EDGES):
        got = [ok for c, ok in pairs if low <= c < high]
        out.append({"confidence": f"{low:.2f}-{min(high, 1.0):.2f}", "n": len(got),
                    "right": round(sum(got) / len(got), 2) if got else None})
    return out


async def main() -> dict:
    pairs: list[tuple[float, bool]] = []
    for name in FEEDBACK:
        rows = [r for r in read_jsonl(str(DATA / name)) if r.get("sentiment") in feedback.SENTIMENTS and r["text"].strip()]
        found = await feedback._label(path_of({}, "examples", "feedback_examples.jsonl"), [r["text"] for r in rows])
        pairs += [(f["sentiment_confidence"], f["sentiment"] == r["sentiment"]) for r, f in zip(rows, found, strict=True)
                  if f["familiar"] >= FAMILIAR]
    tickets: list[tuple[float, bool]] = []
    for name in TICKETS:
        rows = read_jsonl(str(DATA / name), required=("text", "label"))
        found = await support.classifier().classify_many([r["text"] for r in rows])
        tickets += [(c.confidence, c.label == r["label"]) for c, r in zip(found, rows, strict=True)]
    return {"feedback_sentiment": {"messages": len(pairs), "bands": bands(pairs)},
            "support_intent": {"tickets": len(tickets), "bands": bands(tickets)}}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
