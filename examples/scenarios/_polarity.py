"""A second reading of a feedback message's sentiment: English words that plainly praise or complain.

The embedding classifier (MiniLM sentence embeddings, logistic regression) carries topic far better than sentiment,
and some of its wrong readings are confident: "They refunded the double charge the same day, impressed" read
negative at 0.74 and an alert counted it (ninth unseen-data round). This reading never decides a message: where it
finds words of the other polarity than the classifier's (praise in a message read negative, a complaint in one read
positive, either in one read neutral) the message goes to a person (``feedback.to_person``). A word after a negation
(``not``, ``never``, ``n't``, ``no`` within the three words before it, in its clause) counts as the other polarity:
"not bad", "not great". The lists were written while reading the earlier rounds' wrong readings, so their figures
there are optimistic; docs/scenarios.md gives the held-out ones.
"""

from __future__ import annotations

import re

_PRAISE = (
    "amazing appreciate appreciated awesome beautiful beautifully best brilliant delighted excellent fantastic "
    "fast fine friendly glad good great happy helpful impressed impressive love loved lovely nice patient "
    "perfect perfectly pleased professional quick quickly recommend reliable smooth sorted superb thank thanks "
    "wonderful"
)
PRAISE = frozenset(_PRAISE.split())
"""Words that praise (lower case). ``fine`` and ``good`` are here: a neutral "Lesson was fine." was read negative at
0.71 and quoted in an alert (tenth round); a complaint that says "fine" too ("veg fine though") goes to a person."""
_COMPLAINT = (
    "annoying awful bad broke broken crash crashed crashes crashing damaged disappointed disappointing disappointment "
    "error expired fail failed fails faulty freezes freezing horrible ignored late mess missing nightmare nobody "
    "overcharged poor rude shame slow stale terrible unacceptable unfortunately useless worst wrong"
)
COMPLAINT = frozenset(_COMPLAINT.split())
"""Words that complain (lower case)."""
NEGATIONS = frozenset({"not", "no", "never", "without", "nothing", "hardly"})
_TOKEN = re.compile(r"[a-z]+(?:n't)?")
_CLAUSE = re.compile(r"[,.;:!?()\n]")  # a negation reaches no further: "no hassle, thank you" thanks


def cues(text: str) -> tuple[list[str], list[str]]:
    """The words of ``text`` that praise and those that complain, a negated one counted on the other side."""
    praise: list[str] = []
    complaint: list[str] = []
    for clause in _CLAUSE.split(text.lower().replace("\u2019", "'")):
        words = _TOKEN.findall(clause)
        for i, word in enumerate(words):
            side = praise if word in PRAISE else complaint if word in COMPLAINT else None
            if side is None:
                continue
            negated = any(w in NEGATIONS or w.endswith("n't") for w in words[max(0, i - 3):i])
            if negated:
                side = complaint if side is praise else praise
            side.append(f"not {word}" if negated else word)
    return praise, complaint


def disagrees(text: str, sentiment: str) -> str | None:
    """Why the words of ``text`` contradict the classifier's ``sentiment`` (None when they do not): praise in a
    message read negative, a complaint in one read positive, either in one read neutral."""
    praise, complaint = cues(text)
    said = [f"praise ({', '.join(praise[:3])})"] if praise and sentiment != "positive" else []
    said += [f"complain ({', '.join(complaint[:3])})"] if complaint and sentiment != "negative" else []
    if not said:
        return None
    return f"its words {' and '.join(said)} but the classifier read it {sentiment}"
