"""E-mail through an SMTP server, with the standard library's :mod:`smtplib` (run in a thread).

Operation ``send``: ``to`` (an address or a list), ``cc``, ``bcc``, ``subject``, ``text`` and/or
``html``, ``reply_to`` and extra ``headers`` (``X-...``, ``In-Reply-To``, ``References``,
``List-Unsubscribe``). The ``Message-ID`` is derived from the call's idempotency key, so a message
sent again after a crash (same key) carries the same Message-ID: duplicates are recognisable, and
receivers that deduplicate by Message-ID show it once. SMTP itself has no idempotency: delivery is
at-least-once.

Everything a workflow passes is checked before anything is sent: an address or header value with a
line break (header injection), a header that would change the sender or the recipients, or a
recipient outside ``allowed_recipients`` is refused (non-retryable). Connection problems and 4xx
replies are retryable; a refused login, refused recipients and other 5xx replies are not.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import re
import smtplib
import ssl as _ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from ..errors import ConfigError, ConnectorError
from ..secret import Secret
from ._base import Connector, Operation

_ADDRESSES = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_HEADER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
#: Extra headers a workflow may set; the rest (From, To, Bcc, Sender, Message-ID...) decide who
#: sends and who receives, and are the connector's.
_FREE_HEADERS = {"in-reply-to", "references", "list-unsubscribe", "list-id", "auto-submitted", "importance"}


def _truthy(value: Any) -> bool:
    """A boolean setting, also from the registry's text (``--set starttls=true``)."""
    return value.strip().lower() in ("1", "true", "yes", "on") if isinstance(value, str) else bool(value)


async def _secret(value: Any) -> Secret | None:
    """A password given as a Secret, plain text, or a ``secret:NAME`` reference.

    LEAD: ``secret:NAME`` is resolved by ``podium.secret.resolve(name)`` (sync or async) once the
    secret store of issue 14 item 3 provides it; until then such a reference is a clear ConfigError."""
    if value is None or isinstance(value, Secret):
        return value
    text = str(value)
    if text.startswith("secret:"):
        from .. import secret as secrets

        resolve = getattr(secrets, "resolve", None)
        if resolve is None:
            raise ConfigError(
                f"smtp connector: the password {text!r} names a secret, but this installation has no secret "
                "store; pass password_env=VARIABLE (the environment variable that holds it) instead"
            )
        found = resolve(text.removeprefix("secret:"))
        if inspect.isawaitable(found):
            found = await found
        return Secret.wrap(found)
    return Secret(text)


class SmtpConnector(Connector):
    """An SMTP server at ``host``:``port`` sending as ``sender``.

    ``ssl=True`` connects with TLS from the start (port 465); ``starttls=True`` upgrades a plain
    connection (port 587). ``username``/``password`` log in (``password`` a string, a
    :class:`~podium.secret.Secret` or ``secret:NAME``; or ``password_env``, the environment variable
    that holds it). ``allowed_recipients`` limits who may receive mail: addresses, or ``@domain``."""

    kind = "smtp"

    def __init__(
        self,
        host: str,
        port: int | str | None = None,
        *,
        sender: str,
        username: str | None = None,
        password: str | Secret | None = None,
        password_env: str | None = None,
        starttls: bool | str = False,
        ssl: bool | str = False,
        timeout: float | str = 30.0,
        allowed_recipients: list[str] | str | None = None,
        message_id_domain: str | None = None,
    ) -> None:
        if not isinstance(host, str) or not host or "/" in host:
            raise ConfigError(f"an smtp connector needs a host name, got {host!r}")
        self.ssl, self.starttls = _truthy(ssl), _truthy(starttls)
        if self.ssl and self.starttls:
            raise ConfigError("smtp connector: choose ssl (port 465) or starttls (port 587), not both")
        self.host = host
        self.port = int(port) if port else (465 if self.ssl else 587 if self.starttls else 25)
        _, address = parseaddr(sender or "")
        if "@" not in address or "\n" in sender or "\r" in sender:
            raise ConfigError(f"smtp connector: sender must be an e-mail address, got {sender!r}")
        self.sender = sender
        self.username = username or None
        if password is not None and password_env:
            raise ConfigError("smtp connector: give password or password_env, not both")
        self._password: Any = Secret(os.environ.get(password_env, "")) if password_env else password
        self.timeout = float(timeout)
        if isinstance(allowed_recipients, str):  # from the registry: "ops@example.com,@example.org"
            allowed_recipients = [a.strip() for a in allowed_recipients.split(",") if a.strip()]
        self.allowed_recipients = [a.lower() for a in allowed_recipients] if allowed_recipients is not None else None
        self.domain = message_id_domain or address.rpartition("@")[2]

    def operations(self) -> list[Operation]:
        return [
            Operation(
                name="send",
                description="Send an e-mail (text and/or HTML) to `to` (and `cc`, `bcc`).",
                input={
                    "type": "object",
                    "properties": {
                        "to": _ADDRESSES,
                        "cc": _ADDRESSES,
                        "bcc": _ADDRESSES,
                        "subject": {"type": "string"},
                        "text": {"type": "string", "description": "The plain-text body."},
                        "html": {"type": "string", "description": "The HTML body (sent as an alternative to text)."},
                        "reply_to": {"type": "string"},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                    "required": ["to", "subject"],
                    "additionalProperties": False,
                },
                output={
                    "type": "object",
                    "properties": {"message_id": {"type": "string"}, "recipients": {"type": "array"}},
                },
            )
        ]

    def message_id(self, idempotency_key: str | None) -> str:
        """The Message-ID of a call: the same for the same key, so a resent message is recognisable."""
        if not idempotency_key:
            return make_msgid(domain=self.domain)
        return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]}.podium@{self.domain}>"

    def _addresses(self, value: Any, field: str) -> list[str]:
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else None
        if items is None or not all(isinstance(a, str) for a in items):
            raise ConnectorError(f"smtp: `{field}` is an address or a list of addresses")
        out = []
        for item in items:
            if "\r" in item or "\n" in item:
                raise ConnectorError(f"smtp: `{field}` holds a line break (refused: it could add headers)")
            _, address = parseaddr(item)
            local, at, domain = address.rpartition("@")
            if not at or not local or ("." not in domain and domain != "localhost") or " " in address:
                raise ConnectorError(f"smtp: `{field}` holds {item!r}, which is not an e-mail address")
            allowed = self.allowed_recipients
            if allowed is not None and address.lower() not in allowed and "@" + domain.lower() not in allowed:
                raise ConnectorError(
                    f"smtp: {address!r} (in `{field}`) is not a recipient this connector may write to; "
                    "an admin adds it to allowed_recipients"
                )
            out.append(item)
        return out

    def build(self, arguments: dict[str, Any], idempotency_key: str | None = None) -> tuple[EmailMessage, list[str]]:
        """The message and its envelope recipients (a non-retryable error for bad arguments)."""
        args = dict(arguments or {})
        unknown = sorted(set(args) - {"to", "cc", "bcc", "subject", "text", "html", "reply_to", "headers"})
        if unknown:
            raise ConnectorError(f"smtp: send takes no argument {', '.join(map(repr, unknown))}", operation="send")
        if "to" not in args:
            raise ConnectorError("smtp: send needs `to`", operation="send")
        to = self._addresses(args["to"], "to")
        cc = self._addresses(args["cc"], "cc") if args.get("cc") else []
        bcc = self._addresses(args["bcc"], "bcc") if args.get("bcc") else []
        subject = str(args.get("subject") or "")
        text, html = args.get("text"), args.get("html")
        if not text and not html:
            raise ConnectorError("smtp: send needs `text` or `html`", operation="send")
        msg = EmailMessage()
        try:
            msg["From"] = self.sender
            msg["To"] = ", ".join(to)
            if cc:
                msg["Cc"] = ", ".join(cc)
            msg["Subject"] = subject
            msg["Date"] = formatdate(localtime=False, usegmt=True)
            msg["Message-ID"] = self.message_id(idempotency_key)
            if args.get("reply_to"):
                msg["Reply-To"] = ", ".join(self._addresses(args["reply_to"], "reply_to"))
            for name, value in dict(args.get("headers") or {}).items():
                if not _HEADER_NAME.match(str(name)) or not (
                    str(name).lower().startswith("x-") or str(name).lower() in _FREE_HEADERS
                ):
                    raise ConnectorError(
                        f"smtp: the header {name!r} may not be set by a workflow; use X-... or one of "
                        f"{', '.join(sorted(_FREE_HEADERS))}",
                        operation="send",
                    )
                msg[str(name)] = str(value)
        except ValueError as exc:  # the email package refuses line breaks in header values
            raise ConnectorError(f"smtp: a header value is not allowed ({exc})", operation="send") from None
        if text:
            msg.set_content(str(text))
        if html:
            if text:
                msg.add_alternative(str(html), subtype="html")
            else:
                msg.set_content(str(html), subtype="html")
        return msg, [parseaddr(a)[1] for a in (*to, *cc, *bcc)]

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        self.operation(operation)
        msg, recipients = self.build(arguments, idempotency_key)
        password = await _secret(self._password)
        try:
            refused = await asyncio.to_thread(self._send, msg, recipients, password)
        except smtplib.SMTPAuthenticationError as exc:
            raise ConnectorError(
                f"smtp {self.host}:{self.port}: the login was refused ({exc.smtp_code}); check username and password",
                operation=operation,
            ) from None
        except smtplib.SMTPRecipientsRefused as exc:
            raise ConnectorError(
                f"smtp {self.host}:{self.port}: every recipient was refused ({', '.join(exc.recipients)})",
                operation=operation,
            ) from None
        except smtplib.SMTPResponseException as exc:
            said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise ConnectorError(
                f"smtp {self.host}:{self.port} answered {exc.smtp_code}: {said[:200]}",
                retryable=400 <= exc.smtp_code < 500,
                operation=operation,
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise ConnectorError(
                f"smtp {self.host}:{self.port} could not be reached ({type(exc).__name__}: {exc})",
                retryable=True,
                operation=operation,
            ) from None
        return {
            "message_id": msg["Message-ID"],
            "recipients": [r for r in recipients if r not in refused],
            "refused": sorted(refused),
        }

    def _connect(self, password: Secret | None) -> smtplib.SMTP:
        """A connection, upgraded to TLS and logged in as configured (the caller closes it)."""
        context = _ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.ssl:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.starttls:
                smtp.starttls(context=context)
            if self.username:
                smtp.login(self.username, password.reveal() if password is not None else "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _send(self, msg: EmailMessage, recipients: list[str], password: Secret | None) -> dict[str, Any]:
        smtp = self._connect(password)
        try:
            sender = Address(addr_spec=parseaddr(self.sender)[1]).addr_spec
            refused = dict(smtp.send_message(msg, from_addr=sender, to_addrs=recipients))
        except BaseException:
            smtp.close()
            raise
        # the server accepted the message: a QUIT answered with an error or a dropped connection
        # changes nothing, and raising here would send the accepted message again
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()
        return refused

    async def health(self) -> dict[str, Any]:
        """Whether the server answers a NOOP (after TLS and login, when configured)."""
        base = {"breaker": self.breaker.state, "target": f"{self.host}:{self.port}"}
        try:
            password = await _secret(self._password)

            def probe() -> int:
                with self._connect(password) as smtp:
                    return int(smtp.noop()[0])

            code = await asyncio.to_thread(probe)
        except (OSError, smtplib.SMTPException, ConfigError) as exc:
            return {"ok": False, "error": type(exc).__name__, **base}
        return {"ok": code == 250, **base}
