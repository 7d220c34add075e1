"""Validation of workflow files: every problem at once, each with file:line:column, the step and a hint.

One test per class of problem. Positions are asserted exactly: ``at(text, needle)`` is the line and
column where ``needle`` is written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import podium.yaml as pyaml
from podium.yaml import Problem, WorkflowFileError

ROOT = Path(__file__).resolve().parent.parent


def at(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    index = -1
    for _ in range(nth + 1):
        index = text.index(needle, index + 1)
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def check(tmp_path: Path, text: str, name: str = "flow.yaml") -> list[Problem]:
    path = tmp_path / name
    path.write_text(text)
    return pyaml.validate_file(path)


def only(problems: list[Problem], code: str) -> Problem:
    found = [p for p in problems if p.code == code]
    assert len(found) == 1, problems
    return found[0]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: a\n    uses: [set\n"
    p = only(check(tmp_path, text), "yaml")
    assert (p.line, p.column) == (5, 1)
    assert p.file.endswith("flow.yaml") and "not valid YAML" in p.message


def test_tabs_get_a_hint(tmp_path: Path) -> None:
    p = only(check(tmp_path, "name: x\nsteps:\n\t- id: a\n"), "yaml")
    assert (p.line, p.column) == (3, 1) and p.hint == "indent with spaces, not tabs"


def test_unknown_field_suggests_the_right_one(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: a\n    uses: set\n  - id: b\n    uses: log\n    need: a\n    with: {message: hi}\n"
    p = only(check(tmp_path, text), "structure")
    assert (p.line, p.column) == at(text, "need:")
    assert p.step == "b" and "unknown field 'need'" in p.message and p.hint == "did you mean 'needs'?"


def test_duplicate_keys_and_ids(tmp_path: Path) -> None:
    text = "name: x\nname: y\nsteps:\n  - {id: a, uses: set}\n  - {id: a, uses: set}\n"
    problems = check(tmp_path, text)
    dup_key = only(problems, "yaml")
    assert (dup_key.line, dup_key.column) == (2, 1) and "duplicate key 'name'" in dup_key.message
    dup_id = only(problems, "structure")
    assert (dup_id.line, dup_id.column) == at(text, "a", 3) and "two steps have the id 'a'" in dup_id.message


def test_unknown_step_kind(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: classify\n    uses: clasify\n"
    p = only(check(tmp_path, text), "unknown-kind")
    assert (p.line, p.column) == at(text, "clasify")
    assert p.step == "classify" and "unknown step kind 'clasify'" in p.message
    assert "package.module:function" in (p.hint or "")


def test_unknown_step_reference_says_did_you_mean(tmp_path: Path) -> None:
    text = (
        "name: x\nsteps:\n  - id: classify\n    uses: set\n    with: {label: urgent}\n"
        '  - id: reply\n    uses: log\n    with:\n      message: "Label: {{ steps.clasify.output.label }}"\n'
    )
    p = only(check(tmp_path, text), "unknown-reference")
    assert (p.line, p.column) == at(text, "steps.clasify")
    assert p.step == "reply" and "steps.clasify" in p.message and p.hint == "did you mean 'classify'?"


def test_unknown_input_field_and_output_field(tmp_path: Path) -> None:
    text = (
        "name: x\ninput:\n  ticket: string\nsteps:\n  - id: vars\n    uses: set\n    with: {label: urgent}\n"
        "  - id: reply\n    uses: log\n    with:\n"
        "      message: '{{ input.tikcet }} / {{ steps.vars.output.lable }}'\n"
    )
    problems = [p for p in check(tmp_path, text) if p.code == "unknown-reference"]
    assert [(p.line, p.column) for p in problems] == [
        at(text, "input.tikcet"),
        at(text, "steps.vars.output.lable"),
    ]
    assert problems[0].hint == "did you mean 'ticket'?" and problems[1].hint == "did you mean 'label'?"


def test_unknown_name_in_a_condition(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: a\n    uses: set\n    if: inptu.flag\n"
    p = only(check(tmp_path, text), "unknown-reference")
    assert (p.line, p.column) == at(text, "inptu") and p.hint == "did you mean 'input'?"


def test_missing_required_argument(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: nap\n    uses: sleep\n    with: {}\n  - id: py\n    uses: yamlsteps:double\n"
    problems = [p for p in check(tmp_path, text) if p.code == "missing-argument"]
    assert [(p.step, p.line, p.column) for p in problems] == [
        ("nap", *at(text, "with")),
        ("py", *at(text, "yamlsteps:double")),
    ]
    assert (
        "needs the argument 'seconds'" in problems[0].message
        and "needs the argument 'x'" in problems[1].message
    )


def test_unknown_argument(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: py\n    uses: yamlsteps:double\n    with: {x: 1, y: 2}\n"
    p = only(check(tmp_path, text), "unknown-argument")
    assert (p.line, p.column) == at(text, "y: 2") and "no parameter 'y'" in p.message


def test_type_mismatch_of_a_literal_and_of_an_expression(tmp_path: Path) -> None:
    text = (
        "name: x\ninput:\n  name: string\nsteps:\n"
        "  - id: nap\n    uses: sleep\n    with: {seconds: soon}\n"
        "  - id: nap2\n    uses: sleep\n    with: {seconds: '{{ input.name }}'}\n"
        "  - id: py\n    uses: yamlsteps:double\n    with: {x: many}\n"
        "  - id: each\n    uses: log\n    for_each: '{{ input.name }}'\n    with: {message: hi}\n"
    )
    problems = [p for p in check(tmp_path, text) if p.code == "type-mismatch"]
    assert [(p.step, p.line, p.column) for p in problems] == [
        ("nap", *at(text, "soon")),
        ("nap2", *at(text, "'{{ input.name }}'")),
        ("py", *at(text, "many")),
        ("each", *at(text, "'{{ input.name }}'", 1)),
    ]
    assert "sleep argument 'seconds': expected number, got string 'soon'" in problems[0].message
    assert "expects number, but {{ input.name }} gives string" in problems[1].message
    assert "'for_each' needs a list" in problems[3].message


def test_needs_on_a_step_that_does_not_exist(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: load\n    uses: set\n  - id: b\n    uses: set\n    needs: [lod]\n"
    p = only(check(tmp_path, text), "unknown-step")
    assert (p.line, p.column) == at(text, "lod]") and p.step == "b" and p.hint == "did you mean 'load'?"


def test_unknown_fallback_step(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: a\n    uses: set\n    on_error: retyr\n  - id: retry_it\n    uses: set\n"
    p = only(check(tmp_path, text), "unknown-step")
    assert (p.line, p.column) == at(text, "retyr")


def test_cycle_without_a_loop_guard(tmp_path: Path) -> None:
    text = (
        "name: x\nsteps:\n"
        "  - id: draft\n    uses: log\n    with: {message: '{{ steps.review.output }}'}\n"
        "  - id: review\n    uses: log\n    with: {message: '{{ steps.draft.output }}'}\n"
    )
    p = only(check(tmp_path, text), "cycle")
    assert (p.line, p.column) == at(text, "draft")
    assert "draft -> review -> draft form a cycle without a loop guard" in p.message and "loop:" in (
        p.hint or ""
    )


def test_loop_without_max_iterations(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: a\n    uses: set\n    loop: {to: a, while: 'true'}\n"
    p = only(check(tmp_path, text), "loop")
    assert (p.line, p.column) == at(text, "{to: a")
    assert "no 'max_iterations'" in p.message and "max_iterations: 5" in (p.hint or "")


def test_loop_back_to_a_step_that_is_not_earlier(tmp_path: Path) -> None:
    text = (
        "name: x\nsteps:\n  - id: a\n    uses: set\n  - id: b\n    uses: set\n"
        "    loop: {to: a, while: 'true', max_iterations: 3}\n"
    )
    p = only(check(tmp_path, text), "loop")
    assert (p.line, p.column) == at(text, "a, while") and "does not come after it" in p.message


def test_forbidden_template_construct(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: a\n    uses: log\n    with: {message: \"{% include 'secrets.txt' %}\"}\n"
    p = only(check(tmp_path, text), "expression")
    assert (p.line, p.column) == at(text, '"{% include')
    assert "'include' is not allowed" in p.message


def test_template_syntax_error_in_a_block_scalar_points_at_its_line(tmp_path: Path) -> None:
    text = "name: x\nsteps:\n  - id: a\n    uses: log\n    with:\n      message: |\n        line one\n        {{ input.x + }}\n"
    p = only(check(tmp_path, text), "expression")
    assert p.line == at(text, "{{ input.x +")[0]


def test_python_function_refused_or_missing(tmp_path: Path) -> None:
    text = (
        "name: x\nsteps:\n  - id: a\n    uses: os:system\n    with: {command: id}\n"
        "  - id: b\n    uses: yamlsteps:dubble\n"
    )
    problems = [p for p in check(tmp_path, text) if p.code == "python"]
    assert [(p.line, p.column) for p in problems] == [at(text, "os:system"), at(text, "yamlsteps:dubble")]
    assert "standard library" in problems[0].message and problems[1].hint == "did you mean 'double'?"


def test_subworkflow_problems(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "child.yaml").write_text(
        "name: child\nsteps:\n  - {id: back, uses: subworkflow, with: {workflow: parent.yaml}}\n"
    )
    text = (
        "name: parent\nsteps:\n"
        "  - {id: a, uses: subworkflow, with: {workflow: child.yaml}}\n"
        "  - {id: b, uses: subworkflow, with: {workflow: nowhere.yaml}}\n"
    )
    problems = check(tmp_path, text, "parent.yaml")
    subs = [p for p in problems if p.code == "subworkflow"]
    assert len(subs) == 3
    invalid = next(p for p in subs if p.file.endswith("parent.yaml") and "child.yaml" in p.message)
    assert (invalid.line, invalid.column) == at(text, "child.yaml") and "is not valid" in invalid.message
    cycle = next(p for p in subs if p.file.endswith("child.yaml"))
    assert "cycle" in cycle.message
    missing = next(p for p in subs if "nowhere" in p.message)
    assert (missing.line, missing.column) == at(text, "nowhere.yaml") and "no such file" in missing.message


def test_bad_input_schema(tmp_path: Path) -> None:
    text = "name: x\ninput:\n  ticket: strng\n  count: integer?\nsteps:\n  - {id: a, uses: set}\n"
    p = only(check(tmp_path, text), "input-schema")
    assert (p.line, p.column) == at(text, "strng") and "did you mean 'string'?" in p.message


def test_quoted_version_hint(tmp_path: Path) -> None:
    text = "name: x\nversion: 1.10\nsteps:\n  - {id: a, uses: set}\n"
    p = only(check(tmp_path, text), "structure")
    assert (p.line, p.column) == (2, 10) and p.hint == "quote it: version: '1.10'"


def test_missing_file(tmp_path: Path) -> None:
    [p] = pyaml.validate_file(tmp_path / "nope.yaml")
    assert p.code == "file" and (p.line, p.column) == (1, 1) and "cannot read the file" in p.message


def test_every_problem_is_reported_at_once_and_load_raises_them_all(tmp_path: Path) -> None:
    text = (
        "name: x\nsteps:\n  - {id: a, uses: nope}\n  - {id: b, uses: log, with: {message: '{{ steps.zz.output }}'}}\n"
        "  - {id: c, uses: set, needs: [a, q]}\n"
    )
    problems = check(tmp_path, text)
    assert {p.code for p in problems} == {"unknown-kind", "unknown-reference", "unknown-step"}
    with pytest.raises(WorkflowFileError) as err:
        pyaml.load_file(tmp_path / "flow.yaml")
    assert err.value.details == problems
    assert str(err.value).startswith(f"{tmp_path / 'flow.yaml'} is not a valid workflow (3 problems):")
    assert all(f"flow.yaml:{p.line}:{p.column}" in str(err.value) for p in problems)
