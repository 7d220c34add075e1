"""Alert rules from a YAML or JSON file, and clear errors for a bad one."""

from __future__ import annotations

import json

import pytest

from podium import ConfigError
from podium.telemetry import AlertRule, AlertsFileError, Email, Webhook, load_alerts

GOOD = """
poll_interval: 10
channels:
  ops:
    type: webhook
    url: https://hooks.example.test/podium
    headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
  oncall:
    type: email
    host: smtp.example.test
    port: 587
    starttls: true
    sender: podium@example.test
    to: [oncall@example.test]
    username: podium
    password: ${SMTP_PASSWORD}
rules:
  - {name: failures, kind: run_failed, workflow: "billing-*", channels: [ops, oncall], severity: critical}
  - {name: slow-runs, kind: latency_slo, seconds: 300}
  - {name: slow-step, kind: latency_slo, step: summarise, seconds: 30, channels: ops}
  - {name: budget, kind: budget_reached}
  - {name: approvals, kind: approval_sla_missed, seconds: 3600, cooldown: 0}
"""


def write(tmp_path, text: str, name: str = "alerts.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_a_good_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_TOKEN", "t0k")
    monkeypatch.setenv("SMTP_PASSWORD", "pw")
    alerts = load_alerts(write(tmp_path, GOOD))
    assert alerts.poll_interval == 10
    ops, oncall = alerts.channels["ops"], alerts.channels["oncall"]
    assert isinstance(ops, Webhook) and ops.headers == {"Authorization": "Bearer t0k"}
    assert isinstance(oncall, Email) and oncall.password == "pw" and oncall.starttls and oncall.port == 587
    assert [r.kind for r in alerts.rules] == [
        "run_failed",
        "latency_slo",
        "latency_slo",
        "budget_reached",
        "approval_sla_missed",
    ]
    assert alerts.rules[2].channels == ["ops"]
    as_json = write(tmp_path, json.dumps({"rules": [{"name": "f", "kind": "run_failed"}]}), "alerts.json")
    assert load_alerts(as_json).rules[0].name == "f"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: [{name: x, kind: run_faild}]", r"rules\[0\] \(x\): .*kind must be one of run_failed"),
        (
            "rules: [{name: x, kind: latency_slo}]",
            r"rules\[0\] \(x\): .*needs seconds > 0 \(e.g. seconds: 120\)",
        ),
        (
            "rules: [{name: x, kind: latency_slo, seconds: soon}]",
            r"rules\[0\] \(x\)\.seconds: must be a number",
        ),
        ("rules: [{name: x, kind: run_failed, treshold: 3}]", r"rules\[0\] \(x\)\.treshold: unknown field"),
        ("rules: [{kind: run_failed}]", r"rules\[0\]: needs 'name'"),
        ("rules: [{name: x, kind: run_failed, channels: [pager]}]", r"unknown channel\(s\) pager"),
        ("rules: []", r"rules: must be a non-empty list"),
        ("rule: []", r"rule: unknown key; the file may have: channels, rules, poll_interval"),
        (
            "channels: {a: {type: sms}}\nrules: [{name: x, kind: run_failed}]",
            r"channels\.a\.type: must be 'webhook' or 'email'",
        ),
        (
            "channels: {a: {type: email, host: h}}\nrules: [{name: x, kind: run_failed}]",
            r"channels\.a: an email channel needs sender, to",
        ),
        (
            "channels: {a: {type: webhook, url: ftp://x}}\nrules: [{name: x, kind: run_failed}]",
            r"channels\.a: webhook url must start with http",
        ),
        (
            "channels: {a: {type: webhook, url: 'https://x', header: {}}}\nrules: [{name: x, kind: run_failed}]",
            r"channels\.a\.header: unknown field for a webhook channel; allowed: url, headers",
        ),
        (
            "channels: {a: {type: webhook, url: 'https://x/${NOPE_VAR}'}}\nrules: [{name: x, kind: run_failed}]",
            r"channels\.a\.url: environment variable NOPE_VAR is not set",
        ),
        ("rules: [{name: x, kind: run_failed}\n", r"alerts\.yaml:\d+:\d+: not valid YAML"),
        ("- just a list", r"top level: must be a mapping"),
    ],
)
def test_bad_files_say_where_and_how_to_fix(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(AlertsFileError, match=expected) as info:
        load_alerts(path)
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value, ConfigError)


def test_missing_file(tmp_path):
    with pytest.raises(AlertsFileError, match="cannot read the alerts file"):
        load_alerts(tmp_path / "nope.yaml")


def test_rules_check_themselves():
    with pytest.raises(ConfigError, match="seconds applies to latency_slo and approval_sla_missed"):
        AlertRule(name="x", kind="run_failed", seconds=3)
    with pytest.raises(ConfigError, match="step applies to latency_slo only"):
        AlertRule(name="x", kind="run_failed", step="a")
