"""Where alerts go: a :class:`Webhook` (JSON over HTTP, Slack-compatible) or an :class:`Email` (SMTP).

A channel raises :class:`DeliveryError` when it gives up; the :class:`~podium.telemetry.Alerts`
manager logs that and carries on, so a broken channel never stops the engine.
"""

from __future__ import annotations

import abc
import asyncio
import datetime as _dt
import smtplib
import ssl
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


@dataclass(kw_only=True)
class Alert:
    """One alert, as channels receive it."""

    rule: str
    kind: str
    severity: str
    title: str
    """One line: what happened."""
    text: str
    """A paragraph: what happened, where, and what to look at."""
    ts: float = field(default_factory=time.time)
    details: dict[str, Any] = field(default_factory=dict)
    """``run_id``, ``workflow``, ``step``, ``duration``, ``error``... as they apply."""
    suppressed: int = 0
    """Alerts of this rule and subject held back by the cooldown since the last one sent."""

    @property
    def time(self) -> str:
        return _dt.datetime.fromtimestamp(self.ts, _dt.UTC).isoformat(timespec="seconds")

    def to_dict(self) -> dict[str, Any]:
        """The webhook body."""
        return {
            "text": f"[{self.severity}] {self.title}\n{self.text}",
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "message": self.text,
            "ts": self.ts,
            "time": self.time,
            "details": self.details,
            "suppressed": self.suppressed,
        }


class DeliveryError(Exception):
    """A channel could not deliver an alert (after its retries)."""


class Channel(abc.ABC):
    """Somewhere to send alerts."""

    name: str = ""

    @abc.abstractmethod
    async def send(self, alert: Alert) -> None:
        """Deliver ``alert``; raise :class:`DeliveryError` on failure."""


@dataclass(kw_only=True)
class Webhook(Channel):
    """POSTs each alert as JSON to ``url``. The body has a top-level ``text`` (so a Slack or
    Mattermost incoming webhook shows it as is) and the alert's fields (``rule``, ``kind``,
    ``severity``, ``title``, ``ts``, ``details``...)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    """Extra request headers (an ``Authorization`` header, for instance)."""
    timeout: float = 10.0
    """Seconds per attempt."""
    retries: int = 3
    """Further attempts after a failed one (connection errors, 5xx and 429 answers)."""
    backoff: float = 1.0
    """Seconds before the first retry; doubles each time."""
    name: str = "webhook"

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            from ..errors import ConfigError

            raise ConfigError(f"webhook url must start with http:// or https://, got {self.url!r}")

    async def send(self, alert: Alert) -> None:
        import httpx

        body = alert.to_dict()
        problem = ""
        from ..tools._reading import ERROR_BYTES, AnswerTooLarge, AnswerTooSlow, capped, default_deadline

        # The receiver's answer is read up to 64 KiB (only its first 200 characters are quoted), each
        # attempt within a deadline; the environment's proxy is kept (through the cap).
        transport = capped(ERROR_BYTES, default_deadline(self.timeout), trust_env=True)
        async with httpx.AsyncClient(timeout=self.timeout, trust_env=False, transport=transport) as http:
            for attempt in range(self.retries + 1):
                if attempt:
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                try:
                    r = await http.post(self.url, json=body, headers=self.headers)
                except AnswerTooLarge:
                    return  # a success whose answer is long: delivered (asking again would send it twice)
                except (httpx.HTTPError, AnswerTooSlow) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                    continue
                if r.status_code < 300:
                    return
                problem = f"HTTP {r.status_code}: {r.text[:200]}"
                if r.status_code < 500 and r.status_code != 429:
                    break  # the request itself is wrong: retrying will not help
        raise DeliveryError(f"webhook {self.name!r} ({_host(self.url)}) gave up: {problem}")


def _host(url: str) -> str:
    # Only scheme and host in messages: a webhook URL's path often holds its secret (Slack).
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(kw_only=True)
class Email(Channel):
    """Sends each alert as a plain-text email through an SMTP server (stdlib ``smtplib``, in a thread)."""

    host: str
    port: int = 25
    sender: str
    to: list[str]
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    """Upgrade the connection with STARTTLS (port 587, usually)."""
    tls: bool = False
    """Connect with TLS from the start (SMTPS, port 465)."""
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 1.0
    name: str = "email"

    def __post_init__(self) -> None:
        from ..errors import ConfigError

        if isinstance(self.to, str):
            self.to = [self.to]
        if not self.to:
            raise ConfigError("email channel needs at least one recipient in 'to'")
        if self.starttls and self.tls:
            raise ConfigError("email channel: choose starttls (port 587) or tls (port 465), not both")

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = f"[podium] {alert.severity}: {alert.title}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        lines = [alert.text, ""]
        lines += [f"{k}: {v}" for k, v in alert.details.items() if v is not None]
        lines += ["", f"rule: {alert.rule} ({alert.kind})", f"at: {alert.time}"]
        if alert.suppressed:
            lines.append(f"({alert.suppressed} more like it were suppressed by the cooldown)")
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def _send(self, msg: EmailMessage) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(msg)

    async def send(self, alert: Alert) -> None:
        msg = self.message(alert)
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                await asyncio.to_thread(self._send, msg)
                return
            except smtplib.SMTPAuthenticationError as exc:
                problem = f"authentication refused ({exc.smtp_code}); check username and password"
                break
            except (OSError, smtplib.SMTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
        raise DeliveryError(f"email {self.name!r} via {self.host}:{self.port} gave up: {problem}")


def channel_from_dict(name: str, spec: dict[str, Any]) -> Channel:
    """A channel from its alerts-file entry (``type: webhook`` or ``type: email``)."""
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind == "webhook":
        return Webhook(name=name, **spec)
    if kind == "email":
        return Email(name=name, **spec)
    raise ValueError(f"type must be 'webhook' or 'email', got {kind!r}")


__all__ = ["Channel", "DeliveryError", "Email", "Webhook", "channel_from_dict"]
