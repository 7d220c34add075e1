"""Regular expressions written in schemas (``pattern``), matched against text from outside within a
time bound.

Python's ``re`` backtracks without a bound: ``^(\\w+\\s?)*$``, an ordinary-looking pattern, takes
minutes on 30 characters that do not match and doubles with each further one, and the engine's event
loop (every run of the process, the HTTP API) waits meanwhile, since ``re`` holds the GIL. A
workflow file's author writes the pattern; the sender of an event, a model or a planner writes the
text. The ``regex`` package matches with a ``timeout``: a match that takes longer is refused, as a
value that does not fit.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

MAX_SECONDS = 0.25
"""How long one pattern may take on one value."""


class PatternTimeout(ValueError):
    """A pattern took longer than :data:`MAX_SECONDS` on a value: the value is refused."""


def _regex() -> Any:
    try:
        import regex
    except ImportError as exc:  # a base dependency; an install without it cannot bound its patterns
        raise ImportError("matching schema patterns within a time bound needs regex: pip install regex") from exc
    return regex


@functools.lru_cache(maxsize=512)
def _compiled(pattern: str) -> Any:
    return _regex().compile(pattern)


def search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches somewhere in ``text`` (JSON Schema's ``pattern``). Raises
    :class:`PatternTimeout` when it takes longer than :data:`MAX_SECONDS`, and ``ValueError`` for a
    pattern that is not a regular expression."""
    try:
        compiled = _compiled(pattern)
    except _regex().error as exc:
        raise ValueError(f"the pattern {pattern!r} is not a valid regular expression: {exc}") from None
    try:
        return compiled.search(text, timeout=MAX_SECONDS) is not None
    except TimeoutError:
        raise PatternTimeout(
            f"the pattern {pattern!r} took longer than {MAX_SECONDS:g} s on a value of {len(text):,} characters, so "
            "the value is refused (a pattern whose repeats overlap, such as (\\w+\\s?)* or (a|aa)+, backtracks "
            "without end on text that almost matches); write one whose repeats cannot match the same text two "
            "ways, e.g. ^\\w+(\\s\\w+)*$"
        ) from None


def json_validator(schema: Mapping[str, Any]) -> Any:
    """A ``jsonschema`` validator of ``schema`` (its draft, as ``jsonschema.validate`` picks it) whose
    ``pattern`` is matched by :func:`search`."""
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    base.check_schema(schema)
    return bounded(base)(schema)


@functools.lru_cache(maxsize=16)
def bounded(base: Any) -> Any:
    """The ``jsonschema`` validator class ``base`` (``Draft202012Validator``...) with its ``pattern``
    matched by :func:`search`."""
    import jsonschema

    def pattern(validator: Any, patrn: str, instance: Any, schema: Any) -> Iterator[Any]:
        if not validator.is_type(instance, "string"):
            return
        try:
            found = search(patrn, instance)
        except ValueError as exc:  # PatternTimeout, or not a pattern
            yield jsonschema.ValidationError(str(exc))
            return
        if not found:
            yield jsonschema.ValidationError(f"{instance!r} does not match {patrn!r}")

    def pattern_properties(validator: Any, patterns: Mapping[str, Any], instance: Any, schema: Any) -> Iterator[Any]:
        # the keys of an object from outside against the schema's patterns: the same bound as values
        if not validator.is_type(instance, "object"):
            return
        for patrn, subschema in patterns.items():
            for key, value in instance.items():
                try:
                    found = search(patrn, key)
                except ValueError as exc:
                    yield jsonschema.ValidationError(f"key {key[:60]!r}: {exc}")
                    return
                if found:
                    yield from validator.descend(value, subschema, path=key, schema_path=patrn)

    def additional_properties(validator: Any, extra: Any, instance: Any, schema: Any) -> Iterator[Any]:
        # jsonschema weeds out the keys a patternProperties pattern matches with `re`: here, bounded
        if not validator.is_type(instance, "object"):
            return
        named, patterns = schema.get("properties", {}), list(schema.get("patternProperties", {}))
        extras = []
        for key in instance:
            if key in named:
                continue
            try:
                if any(search(patrn, key) for patrn in patterns):
                    continue
            except ValueError as exc:
                yield jsonschema.ValidationError(f"key {key[:60]!r}: {exc}")
                return
            extras.append(key)
        if validator.is_type(extra, "object"):
            for key in extras:
                yield from validator.descend(instance[key], extra, path=key)
        elif not extra and extras:
            shown = ", ".join(repr(k) for k in sorted(extras))
            yield jsonschema.ValidationError(
                f"{shown} {'does' if len(extras) == 1 else 'do'} not match any of the regexes: {', '.join(map(repr, sorted(patterns)))}"
                if patterns
                else f"Additional properties are not allowed ({shown} {'was' if len(extras) == 1 else 'were'} unexpected)"
            )

    return jsonschema.validators.extend(
        base,
        {"pattern": pattern, "patternProperties": pattern_properties, "additionalProperties": additional_properties},
    )


def validate(instance: Any, schema: Mapping[str, Any]) -> None:
    """``jsonschema.validate`` with bounded patterns: raises ``jsonschema.ValidationError`` (the
    best match, as ``jsonschema.validate`` does)."""
    import jsonschema

    error = jsonschema.exceptions.best_match(json_validator(schema).iter_errors(instance))
    if error is not None:
        raise error
