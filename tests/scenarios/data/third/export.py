"""How a real export writes a CSV file, for the third unseen-data round (docs/status.md, seventh session).

``write(path, rows, columns, seed=N)`` writes ``rows`` with what the documented formats allow and
real exports do: columns in another order, header names in other case with spaces around them,
undocumented columns (free text holding commas, doubled quotes and line breaks; a date), CRLF line
ends, a UTF-8 BOM, numbers with spaces around them, trailing blank lines. Which of these a file gets
is drawn from ``seed`` (or forced by the keyword arguments), so each file differs."""
from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

NOTES = ["ok", "called twice, no answer", 'said "cancel, now"', "VIP\nhandle with care", "Rückruf, bitte",
         "", "paid by card; then, refunded", "línea 1\r\nlínea 2"]


def write(path: str | Path, rows: list[dict[str, Any]], columns: list[str], *, seed: int, crlf: bool | None = None,
          bom: bool | None = None, extra: bool | None = None, shuffle: bool | None = None,
          spaces: bool | None = None, header_case: bool | None = None, blank_tail: bool | None = None) -> Path:
    rng = random.Random(seed)

    def pick(given: bool | None) -> bool:
        return rng.random() < 0.6 if given is None else given

    crlf, bom, extra, shuffle, spaces, header_case, blank_tail = (
        pick(crlf), pick(bom), pick(extra), pick(shuffle), pick(spaces), pick(header_case), pick(blank_tail))
    cols = list(columns)
    if shuffle:
        rng.shuffle(cols)
    if extra:
        cols.insert(rng.randrange(len(cols) + 1), "Notiz, intern")
        cols.append("exported_at")
    names = [f" {c.title()} " if header_case and c in columns else c for c in cols]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n" if crlf else "\n")
    w.writerow(names)
    for i, r in enumerate(rows):
        out = []
        for c in cols:
            if c == "Notiz, intern":
                out.append(NOTES[i % len(NOTES)])
            elif c == "exported_at":
                out.append(f"2026-11-{1 + i % 28:02d}T08:00:00Z")
            else:
                v = r.get(c, "")
                if spaces and isinstance(v, int | float) and not isinstance(v, bool) and i % 3 == 0:
                    v = f"  {v} "
                out.append(v)
        w.writerow(out)
    text = buf.getvalue() + (("\r\n" if crlf else "\n") * 2 if blank_tail else "")
    Path(path).write_bytes(("\ufeff" if bom else "").encode() + text.encode("utf-8"))
    return Path(path)


def header_only(path: str | Path, columns: list[str]) -> Path:
    Path(path).write_text(",".join(columns) + "\r\n", encoding="utf-8")
    return Path(path)
