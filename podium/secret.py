"""Secrets (API keys, passwords, tokens): a value that shows as ``***`` wherever it goes, and masking
for the places where secrets arrive as plain data.

:class:`Secret` wraps a string: ``str()``, ``repr()``, f-strings, logs, pydantic's JSON and Podium's
payload store all see ``***``; only :meth:`Secret.reveal` gives the value, at the one place that
needs it (the HTTP header of a provider call). A Secret is never persisted: stored in a run, it is
stored as ``***`` (pass secrets through the environment, or resolve them inside the step).

:func:`mask` is for data that was not wrapped: every field whose name says it holds a secret
(``api_key``, ``password``, ``token``, ``authorization``, ``secret``, ``cookie``...) is shown as
``***`` (a list or mapping under such a name: every text in it), and known credential shapes in
text (``pod_...``, ``Bearer ...``, ``Basic ...``, ``sk-...``, a URL's ``user:password@``, PEM
private keys) are masked.
The CLI (``podium runs show``), the HTTP API's run views and the JSON and text logs show data through it.

Known secret VALUES are masked by content too, whatever their shape: every value read from (or set
in) the secret store by this process, every :class:`Secret` revealed, and what :func:`remember` is
given. A value shorter than :data:`MIN_LENGTH` characters is not remembered (it would mask
ordinary words and numbers). The values are this process's: another process masks the ones it has
read, so errors are masked for known values before they are stored (:func:`podium.errors.error_info`).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any
from urllib.parse import quote

MASK = "***"

MIN_LENGTH = 8
"""Known secret values shorter than this are not masked by content (a PIN, ``admin``, ``1234``
would mask ordinary text); their shape (``password=...``) still is."""
_MAX_KNOWN = 4096  # forms kept; the oldest are let go past it (a process reads few secrets)

#: Field names that hold secrets. Counters (``*_tokens``, ``*_count``) are not secrets.
SECRET_KEY = re.compile(r"token|password|passwd|secret|authorization|api[_-]?key|apikey|cookie|credential", re.I)
_NOT_SECRET = re.compile(r"(tokens|_count|_at|token_name|_type)$", re.I)

#: (pattern, replacement, hints): a pattern runs only on text that holds one of its hints (lowercase),
#: which keeps masking a long prompt or log line cheap when it holds no credential.
_SECRET_TEXT: list[tuple[re.Pattern[str], Any, tuple[str, ...]]] = [
    (re.compile(r"pod_[A-Za-z0-9_\-]{6,}"), "pod_***", ("pod_",)),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.=~+/]+"), r"\1***", ("bearer",)),
    (re.compile(r"(?i)([?&](?:token|api_key|apikey|access_token|key|password)=)[^&\s\"']+"), r"\1***", ("token=", "key=", "password=")),
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), "sk-***", ("sk-",)),
    (re.compile(r"\b(?:ghp|gho|ghs|github_pat|xox[abprs])_?-?[A-Za-z0-9_\-]{10,}"), "***", ("ghp", "gho", "ghs", "github_pat", "xox")),
    (re.compile(r"\bAKIA[0-9A-Z]{16}\b"), "AKIA***", ("akia",)),
    # HTTP basic credentials (base64 of user:password): a token with a digit, + / or =, so prose
    # ("basic understanding") is left alone
    (re.compile(r"(?i)\b(basic\s+)(?=[A-Za-z0-9+/]*[0-9+/=])[A-Za-z0-9+/]{8,}={0,2}(?![A-Za-z0-9+/=])"), r"\1***", ("basic",)),
    # a password in a URL: postgresql://user:PASSWORD@host, https://user:PASSWORD@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/?#@\"']+:)[^\s/?#@\"']+@"), r"\1***@", ("://",)),
    # PEM private keys, also cut off before their END line
    (
        re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.S),
        r"-----BEGIN \1PRIVATE KEY-----***-----END \1PRIVATE KEY-----",
        ("private key",),
    ),
    # "api_key": "...", 'password': '...', api_key=..., password: ... inside messages
    (
        re.compile(
            r"""(?ix)
            ((?:["']?)[\w-]*(?:password|passwd|secret|api[_-]?key|apikey|authorization|cookie|credential|
                (?<![a-z])token)(?:["']?)\s*[:=]\s*)
            (?!bearer\s|basic\s|pod_\*|sk-\*|\*\*\*)
            ("[^"]*"|'[^']*'|[^\s,;}&'")\]]+)
            """
        ),
        lambda m: m.group(1) + (m.group(2)[0] + MASK + m.group(2)[0] if m.group(2)[0] in "\"'" else MASK),
        ("password", "passwd", "secret", "api", "authorization", "cookie", "credential", "token"),
    ),
]


_ANY_HINT = re.compile("|".join(re.escape(h) for _, _, hints in _SECRET_TEXT for h in hints))


def is_secret_key(key: str) -> bool:
    """True when a field called ``key`` holds a secret (``api_key``, ``password``; not ``max_tokens``)."""
    return bool(SECRET_KEY.search(key)) and not _NOT_SECRET.search(key)


class _Known:
    """The secret values this process knows, in the forms they take in text: as they are, inside a
    JSON string (escaped), and percent-encoded (a URL). One pattern finds any of them."""

    def __init__(self) -> None:
        self.forms: dict[str, None] = {}
        self.pattern: re.Pattern[str] | None = None
        self.lock = threading.Lock()

    def add(self, value: str) -> None:
        forms = [f for v in dict.fromkeys((value, value.strip())) for f in _forms(v) if len(f) >= MIN_LENGTH]
        if not forms or all(f in self.forms for f in forms):  # the common case: already known
            return
        with self.lock:
            for f in forms:
                self.forms.pop(f, None)
                self.forms[f] = None
            while len(self.forms) > _MAX_KNOWN:
                del self.forms[next(iter(self.forms))]
            # longest first, so that a value holding another is masked whole
            self.pattern = re.compile("|".join(map(re.escape, sorted(self.forms, key=len, reverse=True))))

    def mask(self, text: str) -> str:
        pattern = self.pattern
        return text if pattern is None or not text else pattern.sub(MASK, text)


def _forms(value: str) -> list[str]:
    if len(value.strip()) < MIN_LENGTH:
        return []
    return list(dict.fromkeys((value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe=""))))


_KNOWN = _Known()


def remember(value: str | Secret) -> None:
    """Mask ``value`` by content from now on, wherever credentials are masked (errors, logs, audit
    entries, alerts, the API's and the CLI's views), whatever its shape. The secret store calls it
    for every value it reads, and :meth:`Secret.reveal` for the value it gives. Values shorter than
    :data:`MIN_LENGTH` characters are ignored."""
    _KNOWN.add(value.reveal() if isinstance(value, Secret) else str(value))


def is_known(value: str) -> bool:
    """Whether ``value`` is a secret this process read (:func:`remember`)."""
    return len(value.strip()) >= MIN_LENGTH and value.strip() in _KNOWN.forms


def redact_known(text: str) -> str:
    """``text`` with the secret values this process knows masked (:func:`remember`), and nothing
    else: for text that is stored as written (a run's error)."""
    return _KNOWN.mask(text)


def redact(text: str) -> str:
    """``text`` with credentials masked: the secret values this process knows (:func:`remember`),
    API tokens, bearer values, ``?token=`` query values, ``sk-`` keys, and the values of
    ``password=``/``"api_key": "..."`` pairs."""
    text = _KNOWN.mask(text)
    lowered = text.lower()
    if _ANY_HINT.search(lowered) is None:
        return text
    for pattern, repl, hints in _SECRET_TEXT:
        if any(h in lowered for h in hints):
            text = pattern.sub(repl, text)
    return text


def mask(value: Any, key: str = "") -> Any:
    """``value`` (JSON-like data) as it may be shown: secret fields and :class:`Secret` values as
    ``***``, credentials in text masked. The value itself is not changed."""
    if isinstance(value, Secret):
        return MASK
    if key and is_secret_key(key) and value is not None:
        return _hidden(value)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: mask(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask(v) for v in value]
    return value


def _hidden(value: Any) -> Any:
    """A secret field's value as shown: every text in it masked, however nested (``{"password":
    ["..."]}``, ``{"secret": {"value": "..."}}``); numbers and flags (``{"token": {"expires_in": 60}}``)
    kept."""
    if isinstance(value, dict):
        return {k: _hidden(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hidden(v) for v in value]
    return value if value is None or isinstance(value, bool | int | float) else MASK


class Secret:
    """A secret string that shows as ``***`` everywhere; :meth:`reveal` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str | Secret) -> None:
        self._value = value.reveal() if isinstance(value, Secret) else str(value)

    @classmethod
    def wrap(cls, value: str | Secret | None) -> Secret | None:
        """``value`` as a Secret (None stays None)."""
        return None if value is None else value if isinstance(value, Secret) else cls(value)

    def reveal(self) -> str:
        """The secret itself: use it where it is needed (an HTTP header), never to show or store.
        From then on the value is masked by content wherever credentials are (:func:`remember`)."""
        _KNOWN.add(self._value)
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> Any:  # pickling would write the value: refuse, like json does
        raise TypeError("a Secret cannot be pickled; pass it through the environment")

    # Podium's payload store (and anything that duck-types pydantic) keeps only the mask.
    def model_dump(self, mode: str = "python", **kw: Any) -> str:
        return MASK

    @classmethod
    def model_validate(cls, value: Any) -> Secret:
        return cls(value if isinstance(value, str | Secret) else str(value))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            lambda v: v if isinstance(v, Secret) else cls(str(v)),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda v: MASK),
        )


__all__ = ["MASK", "MIN_LENGTH", "Secret", "is_secret_key", "mask", "redact", "redact_known", "remember"]


class RequestLines(logging.Filter):
    """The HTTP library's request lines (``HTTP Request: POST URL "HTTP/1.1 200 OK"``, logged at
    INFO for every request) with the URL cut to its scheme, host and port. The path and query are a
    credential for an incoming webhook (a Slack URL's path), and hold a call's arguments for an API
    (``/contacts/ana@example.com``); the URL as sent names the checked address, not the host, so the
    URL the secret store knows does not match it, and nothing masked it."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(record.msg, str) and record.msg.startswith("HTTP Request:") and isinstance(args, tuple) and len(args) >= 2:
            url = args[1]
            scheme, host, port = (getattr(url, k, None) for k in ("scheme", "host", "port"))
            origin = f"{scheme}://{f'[{host}]' if ':' in str(host) else host}" + (f":{port}" if port else "")
            record.args = (args[0], f"{origin}/[path not logged]" if scheme and host else "[URL not logged]", *args[2:])
        return True


_QUIET: set[str] = set()


def quiet_request_lines(*libraries: str) -> None:
    """Keep URLs' paths and queries out of the request lines of ``libraries``' loggers (``httpx``,
    ``httpx2``: :class:`RequestLines`), whatever handler logs them. Idempotent and cheap."""
    for name in libraries or ("httpx", "httpx2"):
        if name not in _QUIET:
            _QUIET.add(name)
            logging.getLogger(name).addFilter(RequestLines())
