"""What a workflow file can get wrong: :class:`Problem` (one finding) and the error that lists them."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DefinitionError


@dataclass(frozen=True, kw_only=True, slots=True)
class Problem:
    """One thing wrong with a workflow file, with where it is and how to fix it."""

    file: str
    """The file as it was named (a path, or ``<string>``)."""
    line: int
    """1-based line."""
    column: int
    """1-based column."""
    message: str
    """What is wrong."""
    code: str
    """A stable class name for the problem: ``yaml``, ``structure``, ``unknown-kind``, ``unknown-step``,
    ``unknown-reference``, ``missing-argument``, ``unknown-argument``, ``type-mismatch``, ``expression``,
    ``cycle``, ``loop``, ``python``, ``subworkflow``, ``input-schema``, ``capability`` (a tool, server,
    host or path that is not registered, or chosen by a template)."""
    step: str | None = None
    """The id of the step it is about, if any."""
    hint: str | None = None
    """How to fix it, when there is more to say than the message."""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"

    def __str__(self) -> str:
        step = f"step {self.step!r}: " if self.step else ""
        hint = f" (hint: {self.hint})" if self.hint else ""
        return f"{self.where}: {step}{self.message}{hint}"

    def to_dict(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "step": self.step,
            "message": self.message,
            "hint": self.hint,
        }


class WorkflowFileError(DefinitionError):
    """A workflow file is not valid. ``details`` holds every :class:`Problem` found, in file order."""

    def __init__(self, file: str, details: list[Problem]) -> None:
        self.details = sorted(details, key=lambda p: (p.file != file, p.file, p.line, p.column))
        n = len(self.details)
        head = f"{file} is not a valid workflow ({n} problem{'s' if n != 1 else ''}):"
        lines = [str(p) for p in self.details]
        super().__init__(head + "\n  - " + "\n  - ".join(lines), lines)
