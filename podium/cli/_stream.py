"""``podium run``'s live text: model answers printed as they are generated (token events, see
podium/ai/_stream.py)."""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

# Model output is untrusted: no escape sequence of it may reach the terminal (colours, cursor moves,
# a rewritten title...). Newlines and tabs stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` without control characters other than newline and tab."""
    return _CONTROL.sub("", text)


class TokenPrinter:
    """Prints the text of the run's streamed model calls under a ``step/call`` heading."""

    def __init__(self, out: TextIO | None = None, *, every_run: bool = False) -> None:
        self.out = out or sys.stdout
        self.every_run = every_run
        self.run_id: str | None = None
        self.early: list[dict[str, Any]] = []
        self.open = False  # a line of model text is being written

    def follow(self, run_id: str) -> None:
        """Print the events of ``run_id`` (those that came before it was known too)."""
        self.run_id = run_id
        early, self.early = self.early, []
        for event in early:
            if event.get("run_id") == run_id:
                self._show(event)

    def __call__(self, _topic: str, event: Any) -> None:
        if not isinstance(event, dict):
            return
        if self.every_run or event.get("run_id") == self.run_id:
            self._show(event)
        elif self.run_id is None:
            self.early.append(event)

    def break_line(self, *_: Any) -> None:
        """End a line of model text before another line is printed (a step event)."""
        if self.open:
            self.out.write("\n")
            self.out.flush()
            self.open = False

    def _show(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        where = clean(f"{event.get('step')}/{event.get('call')}")
        if self.every_run:
            where = clean(f"{event.get('run_id')} {where}")
        if kind == "start":
            self.break_line()
            self.out.write(f"  ▸ {where}: ")
            self.open = True
        elif kind == "text":
            self.out.write(clean(str(event.get("text", ""))))
            self.open = True
        elif kind == "restart":
            self.break_line()
            self.out.write(f"  ↻ {where} started again: ")
            self.open = True
        elif kind == "end":
            self.break_line()
        self.out.flush()
