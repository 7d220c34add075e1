"""Hostile workflow files, as an attacker would write them: template injection, imports, tool, MCP,
HTTP and file escapes, bombs. Each is validated and, if it validates, run with hostile input: none
may run code (a marker file), read a file outside the registered roots (a secret), reach a port
(a listening socket that counts connections), or hang (a deadline on every case)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import podium
from podium import yaml as podium_yaml

CASES: dict[str, str] = {
    "ssti_cycler": "x: \"{{ cycler.__init__.__globals__.os.popen('touch MARK').read() }}\"",
    "ssti_lipsum": "x: \"{{ lipsum.__globals__['os'].popen('touch MARK').read() }}\"",
    "ssti_joiner": "x: \"{{ joiner.__init__.__globals__.os.system('touch MARK') }}\"",
    "ssti_namespace": "x: \"{{ namespace.__init__.__globals__.os.system('touch MARK') }}\"",
    "ssti_mro": "x: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"",
    "ssti_self": "x: \"{{ self.__init__.__globals__ }}\"",
    "ssti_config": "x: \"{{ config.items() }}\"",
    "ssti_input_class": "x: \"{{ input.__class__.__base__.__subclasses__() }}\"",
    "ssti_attr_filter": "x: \"{{ input|attr('__class__')|attr('__mro__') }}\"",
    "ssti_format": "x: \"{{ '{0.__class__}'.format(input) }}\"",
    "include_passwd": "x: \"{% include '/etc/passwd' %}\"",
    "import_os": "x: \"{% import 'os' as os %}{{ os.system('touch MARK') }}\"",
    "range_bomb": 'x: "{{ range(10**9) | list | length }}"',
    "string_bomb": "x: \"{{ 'a' * 10**10 }}\"",
    "pow_bomb": 'x: "{{ 9**9**9**9 }}"',
    "pow_huge": 'x: "{{ 3 ** (10**9) }}"',
    "pow_shift": 'x: "{{ (2 ** (10**9)) | string | length }}"',
    "loop_bomb": 'x: "{% for i in range(10**8) %}{% for j in range(10**8) %}{% endfor %}{% endfor %}"',
    "input_bomb": "x: \"{{ input.s * 100000000 }}\"",
}
STEPS: dict[str, str] = {
    "uses_os_system": "uses: os:system\n    with:\n      command: touch MARK",
    "uses_subprocess": "uses: subprocess:getoutput\n    with:\n      cmd: touch MARK",
    "uses_builtins_eval": "uses: builtins:eval\n    with:\n      source: \"__import__('os').system('touch MARK')\"",
    "uses_template": 'uses: "{{ input.fn }}"',
    "tool_python_os": "uses: tool\n    with:\n      tool: {python: \"os:system\"}\n      arguments: {command: touch MARK}",
    "tool_python_template": "uses: tool\n    with:\n      tool: {python: \"{{ input.fn }}\"}\n      arguments: {command: touch MARK}",
    "tool_mcp_command": "uses: tool\n    with:\n      tool: {mcp: {command: [sh, -c, touch MARK]}, name: x}\n      arguments: {}",
    "tool_http_loopback": "uses: tool\n    with:\n      tool: {http: {url: \"http://127.0.0.1:PORT/\"}}\n      arguments: {}",
    "tool_http_template": "uses: tool\n    with:\n      tool: {http: {url: \"{{ input.url }}\"}}\n      arguments: {}",
    "kb_ingest_etc": "uses: kb_ingest\n    with:\n      kb: k\n      paths: [\"SECRET_DIR\"]",
    "kb_ingest_template": "uses: kb_ingest\n    with:\n      kb: k\n      paths: \"{{ input.path }}\"",
    "subworkflow_escape": "uses: workflow\n    with:\n      file: ../../../../etc/passwd",
    "map_bomb": 'uses: set\n    map: "{{ range(10**7) | list }}"\n    with:\n      x: 1',
}
DOCUMENTS: dict[str, str] = {
    "python_tag": "name: t\nsteps:\n  - id: a\n    uses: set\n    with:\n      x: !!python/object/apply:os.system [touch MARK]\n",
    "billion_laughs": "name: t\n"
    + "".join(
        f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9) if i else ', '.join(['lol'] * 9)}]\n" for i in range(9)
    )
    + "steps:\n  - id: a\n    uses: set\n    with:\n      x: *a8\n",
    "deep_nesting": "name: t\nsteps:\n  - id: a\n    uses: set\n    with:\n      x: " + "[" * 5000 + "]" * 5000 + "\n",
}


def _files() -> dict[str, str]:
    out = {k: f"name: t\nsteps:\n  - id: a\n    uses: set\n    with:\n      {v}\n" for k, v in CASES.items()}
    out |= {k: f"name: t\nsteps:\n  - id: a\n    {v}\n" for k, v in STEPS.items()}
    return out | DOCUMENTS


FILES = _files()
HOSTILE_INPUT = {"fn": "os:system", "url": "http://127.0.0.1:PORT/", "path": "SECRET_DIR", "s": "a" * 1000}


@pytest.fixture
def listener() -> Iterator[tuple[int, list[int]]]:
    """A listening socket on 127.0.0.1 that counts the connections it accepts."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    srv.settimeout(0.2)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            accepted.append(1)
            conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], accepted
    stop.set()
    t.join(2)
    srv.close()


def test_there_are_thirty_two_cases():
    assert len(FILES) >= 32


@pytest.mark.parametrize("case", sorted(FILES))
async def test_a_hostile_file_runs_nothing_reads_nothing_reaches_nothing_and_ends(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listener: tuple[int, list[int]]
) -> None:
    port, accepted = listener
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    (secret_dir / "passwords.txt").write_text("TOPSECRET-42")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    text = FILES[case].replace("PORT", str(port)).replace("SECRET_DIR", str(secret_dir))
    path = work / f"{case}.yaml"
    path.write_text(text)
    hostile = {k: v.replace("PORT", str(port)).replace("SECRET_DIR", str(secret_dir)) for k, v in HOSTILE_INPUT.items()}

    async def attempt() -> str:
        try:
            wf = await asyncio.to_thread(podium_yaml.load_file, str(path))
        except podium.PodiumError as exc:
            return f"refused: {exc}"
        async with podium.Client(f"sqlite:///{tmp_path}/p.db") as client:
            try:
                out = await client.run(wf, hostile)
            except podium.PodiumError as exc:
                return f"failed: {exc}"
            return f"ran: {out!r}"

    outcome = await asyncio.wait_for(attempt(), 60)  # 0 hang
    assert not (work / "MARK").exists(), f"{case} ran code: {outcome}"
    assert "TOPSECRET" not in outcome, f"{case} read a file outside the registered roots"
    assert "root:" not in outcome or case != "include_passwd"
    assert not accepted, f"{case} reached a local port"
