"""``podium run`` printing a large output (fifteenth session): rich highlighted JSON with a span per
token (a pricing run's 4 MB output held ~600 MB while it printed); past 256 KiB the output is
printed as indented plain JSON, the same value, with control and invisible characters escaped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FLOW = (
    "import podium\n"
    "wf = podium.Workflow('big')\n\n"
    "@wf.step\n"
    "async def make(input):\n"
    "    return {'rows': [{'sku': f'S-{i}', 'note': 'x' * 40} for i in range(input['n'])], 'odd': 'a\\u202eb\\x9bc'}\n"
)


def run(tmp: Path, n: int) -> str:
    (tmp / "flows.py").write_text(FLOW)
    env = {**os.environ, "PODIUM_DB": f"sqlite:///{tmp}/big.db", "PYTHONPATH": os.pathsep.join([str(tmp), os.getcwd()])}
    proc = subprocess.run(
        [sys.executable, "-c", "from podium.cli import main; main()", "run", "flows:wf", "--input", json.dumps({"n": n})],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    return proc.stdout


def test_a_large_output_is_printed_whole_as_plain_json_with_controls_escaped(tmp_path: Path) -> None:
    out = run(tmp_path, 6000)  # ~400 KB of JSON
    body = out.partition("\ncompleted run ")[2].partition("\n")[2]  # after the progress lines
    value = json.loads(body)
    assert len(value["rows"]) == 6000 and value["rows"][-1] == {"sku": "S-5999", "note": "x" * 40}
    assert value["odd"] == "a\u202eb\x9bc"  # the same value
    assert "\u202e" not in body and "\x9b" not in body and "\\u202e" in body and "\\u009b" in body


def test_a_small_output_is_still_highlighted_json(tmp_path: Path) -> None:
    out = run(tmp_path, 3)
    body = out.partition("\ncompleted run ")[2].partition("\n")[2]
    assert len(json.loads(body)["rows"]) == 3
