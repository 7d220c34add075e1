"""Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat, Teams workflows, any HTTP
endpoint that takes a JSON ``POST``), through httpx.

Operations:

* ``post``: a chat message, ``{"text": ..., "blocks": [...]}`` plus Slack's optional fields;
* ``send``: any JSON object as the body (for a webhook that is not a chat).

The host is resolved and checked before any connection: loopback, private and link-local addresses
are refused unless the connector is built with ``allow_private=True``, and the request goes to the
address that was checked. Every request carries the call's ``Idempotency-Key`` (stable across
retries, resumes and outbox re-deliveries): a receiver that honours it applies the message once.
HTTP 429 and 5xx are retryable and honour ``Retry-After``; other 4xx and redirects are not.
A webhook URL's path is its secret (Slack's is), so messages only ever name its scheme and host.
The receiver's answer is read up to ``max_response_bytes`` (10 MiB by default), each request within
``deadline`` seconds (by default the larger of 120 and four times ``timeout``; see ``_answers``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..errors import CapabilityDenied, ConfigError, ConnectorError
from ..models._http import httpx_module, retry_after
from ..secret import Secret
from ..tools._echo import header_credentials, mask_echoed, url_credentials
from ..tools._network import pin, resolve_checked
from ._answers import MAX_RESPONSE_BYTES, AnswerTooLarge, AnswerTooSlow, raise_hint, reading, slow_hint
from ._base import Connector, Operation, check_json_body

_RETRYABLE = {408, 425, 429, 500, 502, 503, 504}
_SLACK_FIELDS: dict[str, Any] = {
    "text": {"type": "string", "description": "The message (Slack mrkdwn); the fallback when blocks are given."},
    "blocks": {"type": "array", "items": {"type": "object"}, "description": "Slack Block Kit blocks."},
    "attachments": {"type": "array", "items": {"type": "object"}},
    "thread_ts": {"type": "string", "description": "Reply in this thread."},
    "channel": {"type": "string"},
    "username": {"type": "string"},
    "icon_emoji": {"type": "string"},
    "icon_url": {"type": "string"},
    "unfurl_links": {"type": "boolean"},
    "mrkdwn": {"type": "boolean"},
}


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


class WebhookConnector(Connector):
    """An incoming webhook at ``url`` (a string or a :class:`~podium.secret.Secret`: the URL of a
    Slack webhook is its credential). ``headers`` are sent with every request."""

    kind = "webhook"

    def __init__(
        self,
        url: str | Secret,
        *,
        headers: dict[str, str] | None = None,
        allow_private: bool = False,
        timeout: float = 10.0,
        max_response_bytes: int | str = MAX_RESPONSE_BYTES,
        deadline: float | str | None = None,
    ) -> None:
        self._url = url if isinstance(url, Secret) else Secret(str(url or ""))
        parts = urlsplit(self._url.reveal())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"a webhook connector needs an absolute http(s) url, got {_where(self._url.reveal()) or 'nothing'!r}"
            )
        self.where = _where(self._url.reveal())
        """Scheme and host: what messages and the health report show (never the path)."""
        self.headers = dict(headers or {})
        self.allow_private = bool(allow_private) and str(allow_private).lower() not in ("false", "0", "no")
        self.max_response_bytes, self.deadline, self._pool = reading(self.kind, max_response_bytes, deadline, timeout)
        """The receiver's answer's bytes (decompressed) read at most, a larger success failing the call;
        the seconds for one whole request (by default the larger of 120 and four times ``timeout``)."""

    def operations(self) -> list[Operation]:
        return [
            Operation(
                name="post",
                description="Post a chat message (Slack-compatible: text and/or blocks).",
                input={
                    "type": "object",
                    "properties": _SLACK_FIELDS,
                    "anyOf": [{"required": ["text"]}, {"required": ["blocks"]}],
                    "additionalProperties": False,
                },
                output={"type": "object"},
            ),
            Operation(
                name="send",
                description="POST any JSON object (`body`) to the webhook.",
                input={"type": "object", "properties": {"body": {"type": "object"}}, "required": ["body"]},
                output={"type": "object"},
            ),
        ]

    async def close(self) -> None:
        await self._pool.aclose()

    async def health(self) -> dict[str, Any]:
        """Whether the host may be reached and answers (a HEAD request; nothing is posted)."""
        httpx = httpx_module()
        base = {"breaker": self.breaker.state, "target": self.where}
        try:
            pinned = await resolve_checked(self._url.reveal(), allow_private=self.allow_private, what="webhook health", fix="")
            target, host, extensions = pin(self.where + "/", pinned, self.allow_private)  # no second lookup
            response = await self._pool.get().request("HEAD", target, headers=host, extensions=extensions or None)
        except CapabilityDenied:
            return {"ok": False, "error": "the host is not allowed", **base}
        except (httpx.TransportError, httpx.DecodingError, AnswerTooLarge, AnswerTooSlow) as exc:
            return {"ok": False, "error": type(exc).__name__, **base}
        return {"ok": response.status_code < 500, "status": response.status_code, **base}

    def body_for(self, operation: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The JSON body of a call (a non-retryable error for bad arguments)."""
        self.operation(operation)
        args = dict(arguments or {})
        if operation == "send":
            body = args.pop("body", None)
            if not isinstance(body, dict) or args:
                raise ConnectorError(
                    "webhook: send takes one argument, `body` (a JSON object)", operation=operation
                )
            return body
        unknown = sorted(set(args) - set(_SLACK_FIELDS))
        if unknown:
            raise ConnectorError(
                f"webhook: post takes no argument {', '.join(map(repr, unknown))}; "
                f"it takes {', '.join(_SLACK_FIELDS)} (or use send with a `body`)",
                operation=operation,
            )
        if not args.get("text") and not args.get("blocks"):
            raise ConnectorError("webhook: post needs `text` or `blocks`", operation=operation)
        return args

    async def call(self, operation: str, arguments: dict[str, Any], *, idempotency_key: str | None = None) -> Any:
        httpx = httpx_module()
        body = self.body_for(operation, arguments)
        check_json_body("webhook", operation, body)
        url = self._url.reveal()
        headers = {**self.headers}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            pinned = await resolve_checked(
                url,
                allow_private=self.allow_private,
                what=f"webhook connector ({self.where})",
                fix="build the connector with allow_private=True "
                "(podium connectors add NAME webhook --allow-private; see docs/connectors.md)",
            )
        except CapabilityDenied as exc:
            raise ConnectorError(str(exc), operation=operation) from None
        target, host, extensions = pin(url, pinned, self.allow_private)  # the address checked, naming the host
        headers.update(host)
        try:
            response = await self._pool.get().post(target, json=body, headers=headers, extensions=extensions or None)
        except httpx.TransportError as exc:
            raise ConnectorError(
                f"webhook {self.where} could not be reached ({type(exc).__name__})", retryable=True, operation=operation
            ) from exc
        except AnswerTooLarge as exc:  # it took the message (a success): sending it again would post it twice
            raise ConnectorError(
                f"webhook connector ({self.where}): {operation} was answered with more than {exc.limit:,} bytes, its "
                "max_response_bytes; the answer was not read further and the call failed. The receiver took the "
                f"message (it answered with success); it is not sent again. If its answers are this large, {raise_hint(self.kind)}",
                operation=operation,
            ) from None
        except AnswerTooSlow as exc:  # it may have taken the message: sending it again could post it twice
            took = exc.applied("The receiver", "took the message", "taken the message")
            raise ConnectorError(
                f"webhook connector ({self.where}): {operation} was not answered in full {exc.within}. {took}; it is not "
                f"sent again (that could post it twice). If its answers take this long, {slow_hint(self.kind)}",
                operation=operation,
            ) from None
        status = response.status_code
        if status >= 300:
            hint = " (a redirect is not followed: set the final URL)" if status < 400 else ""
            raise ConnectorError(
                f"webhook {self.where} answered HTTP {status}{hint}: "
                f"{mask_echoed(response.text[:200], url_credentials(url) + header_credentials(self.headers))}",
                retryable=status in _RETRYABLE,
                retry_after=retry_after(response.headers) if status in _RETRYABLE else None,
                operation=operation,
                status=status,
            )
        out: dict[str, Any] = {"status": status}
        if response.content:
            if "json" in response.headers.get("content-type", ""):
                try:
                    out["response"] = response.json()
                except ValueError:
                    out["response"] = response.text[:1000]
            else:
                out["response"] = response.text[:1000]  # Slack answers "ok"
        # an answer echoing the URL (its path is the credential) or a credential header is masked
        return mask_echoed(out, url_credentials(url) + header_credentials(self.headers))
