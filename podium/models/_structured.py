"""Structured output: a pydantic model, a dataclass, any type, or a JSON Schema as the output type."""

from __future__ import annotations

import json
import re
from typing import Any

_FENCE = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.S)


def _not_json(constant: str) -> Any:
    raise ValueError(
        f"it holds {constant}; NaN, Infinity and -Infinity are not JSON, and NaN is neither above nor below "
        "any limit a schema or a later check puts on it: answer with a finite number or null"
    )


def model_json(text: str) -> Any:
    """``json.loads`` for what a model wrote (an answer, a tool call's arguments): JSON only, so
    ``NaN``, ``Infinity`` and ``-Infinity`` (which Python's parser takes) raise ``ValueError``.
    A model's ``{"refund": NaN}`` would pass a schema's ``maximum`` (NaN compares false)."""
    return json.loads(text, parse_constant=_not_json)


class OutputType:
    """The schema a model is asked for, and the validation of its answer against it."""

    def __init__(self, output: Any) -> None:
        self.output = output
        if isinstance(output, dict):
            self.schema: dict[str, Any] = output
            self.name = str(output.get("title") or "output")
            self._adapter: Any = None
        else:
            from pydantic import TypeAdapter

            self._adapter = TypeAdapter(output)
            self.schema = self._adapter.json_schema()
            self.name = getattr(output, "__name__", "output")
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", self.name)[:64] or "output"

    def parse(self, text: str) -> Any:
        """The validated value of a model's answer; raises ``ValueError`` saying what is wrong."""
        m = _FENCE.match(text)
        raw = m.group(1) if m else text.strip()
        try:
            data = model_json(raw)
        except ValueError as exc:
            raise ValueError(f"the answer is not JSON ({exc}): {raw[:200]!r}") from None
        if self._adapter is not None:
            from pydantic import ValidationError

            try:
                return self._adapter.validate_python(data)
            except ValidationError as exc:
                detail = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
                )
                raise ValueError(detail) from None
        _check_schema(data, self.schema)
        return data


def _check_schema(data: Any, schema: dict[str, Any]) -> None:
    import jsonschema  # a base dependency: maximum, pattern, additionalProperties... are always checked

    from . import _patterns

    try:
        _patterns.validate(data, schema)  # a pattern is matched within a time bound (the model wrote the text)
    except jsonschema.ValidationError as exc:
        where = ".".join(map(str, exc.absolute_path)) or "value"
        raise ValueError(f"{where}: {exc.message}") from None
