"""Fuzzing the loader: garbled text, mangled examples and random workflow-shaped structures must give a
list of problems (or a valid workflow), never an exception or a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import podium.yaml as pyaml
from podium import Workflow
from podium.yaml import Problem, WorkflowFileError
from podium.yaml._format import STEP_FIELDS, WORKFLOW_FIELDS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [p.read_text() for p in sorted((ROOT / "examples").glob("*.yaml"))]
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _outcome(text: str) -> list[Problem]:
    problems = pyaml.validate_text(text, "fuzz.yaml", base_dir=str(ROOT / "examples"))
    assert isinstance(problems, list) and all(isinstance(p, Problem) for p in problems)
    for p in problems:
        assert p.line >= 1 and p.column >= 1 and p.message and p.code != "internal", p
        str(p)
    try:
        wf = pyaml.load_text(text, "fuzz.yaml", base_dir=str(ROOT / "examples"))
    except WorkflowFileError as exc:
        assert problems and exc.details
    else:
        assert not problems and isinstance(wf, Workflow)
    return problems


@FUZZ
@given(st.text(max_size=400))
def test_garbled_text(text: str) -> None:
    _outcome(text)


@FUZZ
@given(
    st.sampled_from(EXAMPLES),
    st.lists(
        st.tuples(
            st.integers(0, 5000),
            st.integers(0, 20),
            st.text(alphabet="-:{}[]|>&*!%#'\"\t\n ab{}%~", max_size=4),
        ),
        max_size=6,
    ),
)
def test_mangled_examples(text: str, edits: list[tuple[int, int, str]]) -> None:
    for at, cut, insert in edits:
        at %= max(1, len(text))
        text = text[:at] + insert + text[at + cut :]
    _outcome(text)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(
        [
            "a", "b", "step1", "set", "log", "sleep", "fail", "subworkflow", "hello.yaml", "examples.support:classify",
            "os:system", "examples.demo:workflow", "{{ input.x }}", "{{ steps.a.output }}", "{{ steps.b.output.y }}",
            "{{ item }}", "{{ previous.a.output }}", "{% for x in input %}{{ x }}{% endfor %}", "{{ ''.__class__ }}",
            "{{ range(10**9) }}", "steps.a.output > 1", "fail", "continue", "30s", "5m", "{{", "{%", "}}",
        ]
    ),
)  # fmt: skip
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=8), st.sampled_from(sorted(STEP_FIELDS))), inner, max_size=4
        ),
    ),
    max_leaves=12,
)


@st.composite
def _workflows(draw: Any) -> Any:
    steps = []
    for i in range(draw(st.integers(0, 5))):
        keys = draw(st.lists(st.sampled_from(sorted(STEP_FIELDS)), max_size=8, unique=True))
        step = {k: draw(_VALUES) for k in keys}
        if draw(st.booleans()):
            step["id"] = draw(st.sampled_from(["a", "b", "c", f"s{i}", "input", "bad-id"]))
        if draw(st.booleans()):
            step["uses"] = draw(
                st.sampled_from(
                    ["set", "log", "sleep", "fail", "subworkflow", "nope", "examples.writing:review"]
                )
            )
        steps.append(step)
    top_keys = draw(st.lists(st.sampled_from(sorted(WORKFLOW_FIELDS - {"steps"})), max_size=5, unique=True))
    doc: dict[str, Any] = {k: draw(_VALUES) for k in top_keys}
    doc["steps"] = steps if draw(st.booleans()) else draw(_VALUES)
    return doc if draw(st.integers(0, 9)) else draw(_VALUES)


@FUZZ
@given(_workflows())
def test_random_structures(doc: Any) -> None:
    _outcome(yaml.safe_dump(doc, allow_unicode=True))
