"""Splitting text into overlapping chunks that end at natural boundaries.

A chunk is at most ``size`` characters and ends, when it can, at a paragraph break, else a sentence
end, else a space. The next chunk starts ``overlap`` characters before the previous one ended
(moved forward to a word start), so a fact split across a boundary is whole in one of them.
Markdown headings are tracked, and each chunk records the section it starts in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)


def headings(text: str) -> list[tuple[int, str]]:
    """Markdown headings as ``(offset, title)``, skipping lines inside fenced code blocks (a ``#``
    comment in a shell or Python example is not a heading)."""
    fenced: list[tuple[int, int]] = []
    opened: tuple[int, str] | None = None
    for m in _FENCE.finditer(text):
        mark = m.group(1)
        if opened is None:
            opened = (m.start(), mark)
        elif mark[0] == opened[1][0] and len(mark) >= len(opened[1]):
            fenced.append((opened[0], m.end()))
            opened = None
    if opened is not None:  # an unclosed fence runs to the end of the text
        fenced.append((opened[0], len(text)))
    return [
        (m.start(), m.group(2))
        for m in _HEADING.finditer(text)
        if not any(a <= m.start() < b for a, b in fenced)
    ]


@dataclass(frozen=True, kw_only=True, slots=True)
class Chunk:
    text: str
    start: int
    """Character offsets in the section's text."""
    end: int
    heading: str | None = None


def _cut(text: str, start: int, size: int) -> int:
    end = min(len(text), start + size)
    if end == len(text):
        return end
    window = text[start:end]
    floor = len(window) // 2  # never cut the chunk to less than half its size
    for pattern in ("\n\n", ". ", "? ", "! ", "\n", " "):
        at = window.rfind(pattern)
        if at >= floor:
            return start + at + len(pattern)
    return end


def chunk_text(text: str, *, size: int = 1000, overlap: int = 150) -> list[Chunk]:
    """Chunks of ``text`` (see the module docstring). Whitespace-only chunks are dropped."""
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need size > 0 and 0 <= overlap < size, got size={size}, overlap={overlap}")
    found = headings(text)
    out: list[Chunk] = []
    start = 0
    while start < len(text):
        end = _cut(text, start, size)
        piece = text[start:end].strip()
        if piece:
            heading = next((h for at, h in reversed(found) if at <= start), None)
            out.append(Chunk(text=piece, start=start, end=end, heading=heading))
        if end >= len(text):
            break
        nxt = max(end - overlap, start + 1)
        while 0 < nxt < end and not text[nxt - 1].isspace():  # start at a word
            nxt += 1
        start = nxt
    return out
