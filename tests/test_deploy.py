"""The deployment files: the image, the raw Kubernetes manifests and the Helm chart.

* deploy/k8s/*.yaml is validated against the Kubernetes OpenAPI schemas, offline
  (``kubernetes-validate`` ships them; skips, saying so, when it is not installed).
* The chart is rendered with ``helm template`` and each document validated the same way, when
  ``helm`` is on the PATH (neither Debian nor PyPI packages it for this machine: the test then skips
  and says so). Without helm, every ``.Values`` path the templates use must exist in values.yaml.
* Every ``podium`` flag the image, the manifests and the chart pass is a real flag of that command.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
CHART = DEPLOY / "helm" / "podium"
K8S_VERSION = "1.30.0"


def _validate(docs: list[dict[str, Any]], where: str) -> None:
    kv = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate is not installed (pip install kubernetes-validate)")
    problems = []
    for doc in docs:
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            problems.append(f"{where}: {doc['kind']} {doc['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


def _containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for doc in docs:
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec", {}) if "template" in spec else spec
        out += pod.get("containers", [])
    return out


def _check_flags(args: list[str], where: str) -> None:
    """``args`` (after the image's ``podium`` entry point) name a command and flags it has."""
    from podium.cli import cli

    command = cli.commands.get(args[0])
    assert command is not None, f"{where}: podium has no command {args[0]!r}"
    known = {opt for p in command.params for opt in getattr(p, "opts", [])}
    for arg in args[1:]:
        if arg.startswith("--"):
            flag = arg.split("=", 1)[0]
            assert flag in known, f"{where}: podium {args[0]} has no option {flag}"


def test_k8s_manifests_match_the_kubernetes_schemas() -> None:
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for container in _containers(docs):
            if container["image"].startswith("my-podium"):
                _check_flags(container["args"], f"{path.name} {container['name']}")
        _validate(docs, path.name)


def test_the_image_runs_serve_and_worker() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    install = re.search(r'pip install "\.\[([a-z,]+)\]"', text)
    assert install is not None and {"server", "postgres"} <= set(install.group(1).split(","))
    assert "PODIUM_LOG_FORMAT=json" in text
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd is not None
    args = yaml.safe_load(cmd.group(1))
    _check_flags(args, "Dockerfile CMD")
    assert "--health-port" in args
    # Distinct default ports: podium serve 8321, a worker's health port 8322, llama.cpp's server 8080.
    from podium.settings import FIELDS

    assert FIELDS["serve_port"][0] == 8321 and args[args.index("--health-port") + 1] == "8322"


def test_chart_values_used_by_the_templates_exist() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "podium"
    missing = []
    for tpl in sorted((CHART / "templates").iterdir()):
        for path in re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", tpl.read_text()):
            node: Any = values
            for key in path.strip(".").split("."):
                if not isinstance(node, dict) or key not in node:
                    missing.append(f"{tpl.name}: .Values{path}")
                    break
                node = node[key]
    assert not missing, f"not in values.yaml: {sorted(set(missing))}"
    for name in ("api.yaml", "worker.yaml"):
        text = (CHART / "templates" / name).read_text()
        command = "serve" if name == "api.yaml" else "worker"
        _check_flags([command, *re.findall(r"^\s+- (--[a-z-]+)", text, re.M)], f"chart {name}")
        assert "path: /healthz" in text and "path: /readyz" in text


@pytest.mark.parametrize(
    "settings",
    [
        ["--set", "postgresql.password=s3cret"],  # the chart's reference PostgreSQL
        ["--set", "postgresql.enabled=false", "--set", "secret.db=postgresql://podium:x@db.example:5432/podium"],
        ["--set", "secret.create=false", "--set", "secret.existingSecret=podium", "--set", "postgresql.enabled=false"],
    ],
)
def test_helm_chart_renders_to_valid_manifests(settings: list[str]) -> None:
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip(
            "helm is not installed (Debian and PyPI have no package of it for this machine); "
            "the chart's values were checked by test_chart_values_used_by_the_templates_exist"
        )
    lint = subprocess.run([helm, "lint", str(CHART), *settings], capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    done = subprocess.run(
        [helm, "template", "demo", str(CHART), *settings], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("Deployment") == 2 and "Service" in kinds
    assert ("StatefulSet" in kinds) == ("postgresql.password=s3cret" in settings)
    for container in _containers(docs):
        env = {e["name"] for e in container.get("env", [])}
        if container["name"] in ("api", "worker"):
            assert {"PODIUM_DB", "PODIUM_TOKEN", "PODIUM_LOG_FORMAT"} <= env
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    _validate(docs, "helm template")
