"""Reading /metrics as Prometheus does: the official client's parsers, and promtool when installed."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

prometheus_client = pytest.importorskip(
    "prometheus_client", reason="/metrics needs the server extra (prometheus-client)"
)
from prometheus_client.openmetrics.parser import (  # noqa: E402
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

__all__ = ["OPENMETRICS", "families", "openmetrics_families", "promtool_check", "value"]

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def families(text: str) -> dict[str, Any]:
    """The metric families of a text-format exposition, by name; the parser must accept it and
    no two families may share a name (Prometheus would mix their series)."""
    found = list(text_string_to_metric_families(text))
    names = [f.name for f in found]
    assert len(names) == len(set(names)), f"families declared twice: {sorted({n for n in names if names.count(n) > 1})}"
    return {f.name: f for f in found}


def value(fams: dict[str, Any], sample: str, **labels: str) -> float | None:
    """The value of ``sample`` with exactly ``labels`` (None when there is no such series)."""
    for fam in fams.values():
        for s in fam.samples:
            if s.name == sample and s.labels == labels:
                return float(s.value)
    return None


def promtool_check(text: str) -> None:
    """``promtool check metrics`` on ``text`` (Debian's ``prometheus`` package); skips, saying why,
    when promtool is not installed."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install prometheus): the official client's parser checked it")
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    # Lint remarks (a counter without _total...) are printed and exit 3; real errors exit 1.
    assert done.returncode == 0, f"promtool check metrics: {done.stdout}{done.stderr}"
