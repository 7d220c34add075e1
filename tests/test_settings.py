"""One configuration: podium.toml / [tool.podium], PODIUM_* variables and flags, in that order, and
`podium config show` telling where each value came from."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from podium import ConfigError
from podium.cli import cli
from podium.settings import load_settings
from podium.storage import default_url


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("PODIUM_"):
            monkeypatch.delenv(name)
    (tmp_path / "podium.toml").write_text('[podium]\ndb = "sqlite:///data/app.db"\nlog_format = "json"\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    return tmp_path


def test_podium_toml_is_read_from_anywhere_in_the_project(project: Path) -> None:
    got = load_settings()
    assert got.values.db == f"sqlite:///{project / 'data' / 'app.db'}"
    assert got.source("db") == f"podium.toml ({project / 'podium.toml'})"
    assert got.values.log_format == "json"
    assert got.source("model") == "default"
    assert default_url() == got.values.db  # the store every surface opens by default


def test_environment_beats_the_file_and_flags_beat_both(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_DB", "sqlite:///env.db")
    monkeypatch.setenv("PODIUM_SERVE_PORT", "9001")
    got = load_settings()
    assert (got.values.db, got.source("db")) == ("sqlite:///env.db", "environment")
    assert got.values.serve_port == 9001
    flagged = load_settings({"db": "memory://", "serve_port": None})
    assert (flagged.values.db, flagged.source("db")) == ("memory://", "flag")
    assert flagged.values.serve_port == 9001  # a flag not given leaves the lower layers


def test_pyproject_table_is_the_lowest_file_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("PODIUM_"):
            monkeypatch.delenv(name)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.podium]\nmodel = "openai:gpt-4o-mini"\nserve_port = 8500\n')
    monkeypatch.chdir(tmp_path)
    got = load_settings()
    assert got.values.model == "openai:gpt-4o-mini" and got.values.serve_port == 8500
    assert got.source("model").startswith("pyproject.toml")
    (tmp_path / "podium.toml").write_text("serve_port = 8600\n")  # top-level keys work too
    got = load_settings()
    assert got.values.serve_port == 8600 and got.values.model == "openai:gpt-4o-mini"


def test_mistakes_name_the_file_the_setting_and_the_fix(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "podium.toml").write_text('[podium]\ndbb = "x"\n')
    with pytest.raises(ConfigError, match=r"podium.toml: unknown setting 'dbb' \(did you mean 'db'\?\)"):
        load_settings()
    (project / "podium.toml").write_text("[podium]\nserve_port = 99999\n")
    with pytest.raises(ConfigError, match=r"serve_port \(from podium.toml .*\): .*65535"):
        load_settings()
    (project / "podium.toml").write_text("")
    monkeypatch.setenv("PODIUM_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError, match=r"log_format \(from \$PODIUM_LOG_FORMAT\)"):
        load_settings()
    (project / "podium.toml").write_text("[podium\n")
    monkeypatch.delenv("PODIUM_LOG_FORMAT")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings()


def test_config_show_prints_values_and_sources_with_secrets_masked(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TOKEN", "pod_supersecret")
    result = CliRunner().invoke(cli, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in map(json.loads, result.output.splitlines())}
    assert rows["token"] == {"name": "token", "value": "***", "source": "environment"}
    assert rows["db"]["source"].startswith("podium.toml")
    assert "supersecret" not in result.output
    table = CliRunner().invoke(cli, ["config", "show"])
    assert table.exit_code == 0 and "log_format" in table.output and "supersecret" not in table.output
    (project / "podium.toml").write_text("[podium]\nnope = 1\n")
    bad = CliRunner().invoke(cli, ["config", "show"])
    assert bad.exit_code == 2 and "unknown setting 'nope'" in bad.output and "Traceback" not in bad.output


def test_the_cli_uses_the_configured_store(project: Path) -> None:
    result = CliRunner().invoke(cli, ["runs", "--json"])
    # a read does not make the store's folder: it names where podium.toml says the store is
    assert result.exit_code == 2 and str(project / "data" / "app.db") in result.output, result.output
    (project / "data").mkdir()
    result = CliRunner().invoke(cli, ["runs", "--json"])  # nor the file, in a folder that exists
    assert result.exit_code == 2 and "the file does not exist" in result.output, result.output
    assert not (project / "data" / "app.db").exists()
    made = CliRunner().invoke(cli, ["killswitch", "set", "workflow", "nothing-yet"])  # a write makes it
    assert made.exit_code == 0, made.output
    result = CliRunner().invoke(cli, ["runs", "--json"])
    assert result.exit_code == 0, result.output
    assert (project / "data" / "app.db").exists()  # created where podium.toml says, not in ./sub
    assert not (project / "sub" / ".podium").exists()
