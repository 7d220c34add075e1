"""The expression sandbox: a workflow file cannot run code, read files or environment variables,
import modules, or exhaust the engine. Known template-injection payloads are refused with a clear
error, when the file is checked and again (if the check were bypassed) when it is evaluated."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

import podium
import podium.yaml as pyaml
from podium import RunFailed
from podium.yaml._expr import ExpressionError, compile_template
from podium.yaml._sandbox import environment

ROOT = Path(__file__).resolve().parent.parent

INJECTIONS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__.__base__.__subclasses__()[40]('/etc/passwd').read() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ lipsum.__globals__ }}",
    "{{ lipsum.__globals__['os'].environ }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ request.application.__globals__.__builtins__.__import__('os') }}",
    "{{ input.__class__ }}",
    "{{ input['__class__'] }}",
    "{{ input | attr('__class__') }}",
    "{{ input.items | map(attribute='__class__') | list }}",
    "{{ range.__self__ }}",
    "{{ '{0.__class__}'.format(input) }}",
    "{{ env.HOME }}",
    "{{ environ }}",
    "{{ os.environ }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{% from 'os' import system %}",
    "{% extends '/etc/passwd' %}",
    "{% set x = 1 %}{{ x }}",
    "{% macro m() %}{% endmacro %}",
    "{% for x in input recursive %}{{ loop(x) }}{% endfor %}",
    "{% filter upper %}x{% endfilter %}",
    "{% with a = 1 %}{{ a }}{% endwith %}",
]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_injection_payloads_are_refused_when_the_file_is_checked(payload: str) -> None:
    text = f"name: x\nsteps:\n  - id: a\n    uses: set\n    with:\n      v: {payload!r}\n".replace(
        "\\\\", "\\"
    )
    problems = pyaml.validate_text(text, "inject.yaml", base_dir=str(ROOT))
    assert problems, payload
    p = problems[0]
    assert p.code in ("expression", "unknown-reference") and p.step == "a" and p.line == 6
    assert "not allowed" in p.message or "unknown name" in p.message or "unknown filter" in p.message
    with pytest.raises(pyaml.WorkflowFileError):
        pyaml.load_text(text, "inject.yaml", base_dir=str(ROOT))


@pytest.mark.parametrize("payload", [p for p in INJECTIONS if p.startswith("{{")])
def test_the_sandbox_refuses_them_even_without_the_check(payload: str) -> None:
    env = environment()
    try:
        template = env.from_string(payload)
    except Exception:
        return  # the filter does not even exist in this environment
    with pytest.raises((SecurityError, UndefinedError, TypeError)):
        template.render(input={"items": [1]})


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ("{{ range(10**9) | list }}", "exceeds the limit"),
        ("{{ 'a' * 10**9 }}", "would exceed"),
        ("{{ [1] * 10**8 }}", "would exceed"),
        ("{{ 9 ** 999999 }}", "too large"),
        ("{{ (2 ** 4000) * (2 ** 4000) * (2 ** 4000) }}", "too large"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "iterations"),
        ("{{ ('x' * 9000000) ~ ('x' * 9000000) }}", "would exceed"),
        ("{{ ('x' * 9000000) + ('x' * 9000000) }}", "would make a value"),
        ("{{ range(20000) | join('x' * 1000) }}", "join would exceed"),
        ("{% for i in range(20) %}{{ 'x' * 1000000 }}{% endfor %}", "wrote more than"),
        ("{{ 'x' | replace('x', 'y' * 1000000) | replace('y', 'z' * 1000) }}", "replace would exceed"),
        ("{{ '%999999999d' % 1 }}", "width or precision"),
        ("{{ input.items | sum(start=[]) }}", "numbers only"),
        ("{{ input.pop('items') }}", "unsafe"),
        ("{{ 'abc'.zfill(999999999) }}", "not allowed"),
    ],
)
def test_resource_exhaustion_and_mutation_fail_the_step_quickly(payload: str, message: str) -> None:
    text = f"name: bomb\nsteps:\n  - id: a\n    uses: set\n    with:\n      v: {payload!r}\n"
    wf = pyaml.load_text(text, "bomb.yaml", base_dir=str(ROOT))
    started = time.monotonic()
    with pytest.raises(RunFailed) as err:
        podium.run(wf, {"items": [1, 2]})
    assert time.monotonic() - started < 10
    assert err.value.error["step"] == "a"
    assert message in err.value.error["message"], err.value.error["message"]
    assert err.value.error["message"].startswith("step 'a': with.v (bomb.yaml:6:10): ")  # where it is written


def test_data_is_never_evaluated_as_a_template() -> None:
    text = "name: echo\nsteps:\n  - id: a\n    uses: set\n    with: {v: '{{ input.text }}', w: 'got {{ input.text }}'}\n"
    wf = pyaml.load_text(text, "echo.yaml", base_dir=str(ROOT))
    payload = "{{ ''.__class__.__mro__ }}{% include '/etc/passwd' %}"
    assert podium.run(wf, {"text": payload}) == {"v": payload, "w": f"got {payload}"}


def test_allowed_expressions_still_work() -> None:
    expr = compile_template(
        "{{ input.s.split(',') | map('upper') | join('-') }} {{ input.d.get('k', 0) + input.d.items | length }}"
        "{% for x in input.l %}{{ loop.index }}{{ x }}{% endfor %} {{ range(3) | sum }} {{ '%.1f' % 2.25 }}",
        {"input"},
    )
    value = expr.evaluate({"input": {"s": "a,b", "d": {"k": 1, "items": [1, 2]}, "l": ["x", "y"]}})
    assert value == "A-B 31x2y 3 2.2"


def test_expression_errors_name_the_refused_construct() -> None:
    with pytest.raises(ExpressionError) as err:
        compile_template("{{ ''.__class__ }}", {"input"})
    assert err.value.message == "access to '__class__' is not allowed: names starting with '_' are private"


@pytest.mark.parametrize(
    ("uses", "reason"),
    [
        ("os:system", "standard library"),
        ("builtins:eval", "standard library"),
        ("subprocess:run", "standard library"),
        ("importlib:import_module", "standard library"),
        ("podium:run", "part of Podium"),
        ("yaml:unsafe_load", "not part of this project"),
        ("yamlsteps:_private", "private"),
        ("yamlsteps:Order", "not a function defined in"),
        ("yamlsteps:dataclass", "not a function defined in"),
        ("yamlsteps.__builtins__:eval", "private"),
        ("no_such_module_xyz:f", "cannot find module"),
    ],
)
def test_python_steps_can_call_only_project_functions(uses: str, reason: str) -> None:
    text = f"name: x\nsteps:\n  - id: a\n    uses: '{uses}'\n"
    problems = pyaml.validate_text(text, "py.yaml", base_dir=str(ROOT))
    assert problems and problems[0].code == "python" and reason in problems[0].message, problems


def test_installed_packages_can_be_allowed_by_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "name: x\nsteps:\n  - id: a\n    uses: 'yaml:safe_load'\n    with: {stream: 'a: 1'}\n"
    assert [p.code for p in pyaml.validate_text(text, "py.yaml", base_dir=str(ROOT))] == ["python"]
    assert podium.run(pyaml.load_text(text, "py.yaml", base_dir=str(ROOT), modules=["yaml"])) == {"a": 1}
    monkeypatch.setenv("PODIUM_YAML_MODULES", "json, yaml")
    assert pyaml.validate_text(text, "py.yaml", base_dir=str(ROOT)) == []


def test_subworkflow_files_must_stay_inside_the_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "podium.toml").write_text("")
    (tmp_path / "outside.yaml").write_text("name: o\nsteps:\n  - {id: a, uses: set}\n")
    (project / "main.yaml").write_text(
        "name: m\nsteps:\n  - {id: a, uses: subworkflow, with: {workflow: ../outside.yaml}}\n"
    )
    [p] = pyaml.validate_file(project / "main.yaml")
    assert p.code == "subworkflow" and "outside this project" in p.message


BUILT_BEFORE_REFUSED = [
    # Numbers are as long as their digits: 100,000 copies of a 1,205-digit number are 120 million
    # characters of text, though they counted as 100,000 items.
    ("{{ ([2 ** 4000] * 100000) | upper | length }}", "would exceed"),
    ("{{ ([2 ** 4000] * 100000) | join }}", "would exceed"),
    # One value held twice is counted twice: a list literal repeating a 9-million-character value,
    # then made text by a filter.
    ("{% for x in [['a' * 1000] * 9000] %}{{ [x, x] | upper | length }}{% endfor %}", "would exceed"),
    ("{% for x in ['a' * 6000000] %}{{ [x, x] | trim | length }}{% endfor %}", "would exceed"),
    ("{% for x in ['a' * 6000000] %}{{ [x, x] | replace('b', 'c') | length }}{% endfor %}", "would exceed"),
    # A mapping key may be used any number of times in one '%' format.
    ("{{ ('%(a)s' * 1000) % {'a': 'x' * 100000} }}", "'%' formatting"),
    # Review: Python reads a key with nested parentheses ('%((a))s' uses key '(a)'), which the count
    # of conversions missed: 100 million characters were made before the result's check.
    ("{{ ('%((a))s' * 1000) % {'(a)': 'x' * 100000} }}", "'%' formatting could make"),
    ("{{ ('%(a(b))s' * 1000) % {'a(b)': 'x' * 100000} }}", "'%' formatting could make"),
    # A native value that refers to one list 2,000 times.
    ("{{ ([none] * 2000) | map('default', ['a'] * 9000, true) | list }}", "would exceed"),
]


@pytest.mark.parametrize(("payload", "message"), BUILT_BEFORE_REFUSED)
def test_values_beyond_the_bound_are_refused_before_they_are_built(payload: str, message: str) -> None:
    """Attack: a workflow file whose expression makes text far beyond MAX_SIZE (10 million
    characters) out of values the size check counted small (a long number counted as one item, one
    value held many times, a '%' mapping key used many times). The check refused the result only
    after it was built: gigabytes on the engine's host with a few more copies (every run of every
    tenant in that process dies with it). Now refused before anything big is made."""
    import tracemalloc

    expr = compile_template(payload, {"input"})
    tracemalloc.start()
    try:
        with pytest.raises(pyaml_expr_error()) as err:
            expr.evaluate({"input": {}})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message in str(err.value), str(err.value)
    assert peak < 40_000_000, f"{peak:,} bytes were allocated before the refusal"


def pyaml_expr_error() -> type[Exception]:
    from podium.yaml._expr import EvaluationError

    return EvaluationError


@pytest.mark.parametrize(
    "payload",
    [
        "{% for i in range(100000) %}{{ input.text | upper | length }}{% endfor %}",
        "{% for i in range(100000) %}{% if input.many == input.other %}x{% endif %}{% endfor %}",
    ],
)
def test_an_expression_has_a_time_bound(payload: str) -> None:
    """Attack (review): each step of these stays under the size and iteration bounds, but together
    they are 10^11 character operations: one expression held the event loop (every run of the
    process) for minutes. An evaluation now stops at MAX_SECONDS with an error naming the bound."""
    from podium.yaml._sandbox import MAX_SECONDS

    expr = compile_template(payload, {"input"})
    text, same = "ab" * 500_000, "ab" * 500_000  # one million characters, twice (equal, not one object)
    with pytest.raises(pyaml_expr_error()) as err:
        expr.evaluate({"input": {"text": text, "many": [text] * 2000, "other": [same] * 2000}})
    assert f"{MAX_SECONDS:g} s" in str(err.value) and "bounded" in str(err.value), str(err.value)
