"""A system's answer that echoes the credentials it was sent (a debugging API returning the headers
it got, a gateway that names the key in its body) has them masked before the answer becomes a
step's output: outputs are stored, sent as events and shown on the dashboard.

Only the values this connector itself sent are masked (the bearer or OAuth2 access token, the API
key, Basic credentials and the password in them, a header read from a secret), as written,
JSON-escaped and percent-encoded. Anything else the answer holds is data and is kept as it came: an
API that issues keys answers with a key nobody sent, and that key is the step's result."""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ..secret import MASK, MIN_LENGTH, _forms, is_known, is_secret_key


def sent_credentials(sent: dict[str, str], secret_headers: list[str], auth: dict[str, Any] | None) -> list[str]:
    """The credential texts among the headers ``sent``: those of ``secret_headers`` (headers whose
    value came from a secret), and the ``auth`` header's value."""
    out = [sent[k] for k in secret_headers if k in sent]
    if auth is not None:
        kind = str(auth["type"])
        header = str(auth.get("header") or "X-API-Key") if kind == "api_key" else "Authorization"
        value = sent.get(header, "")
        out.append(value)
        rest = value.partition(" ")[2]
        if kind != "api_key" and rest:
            out.append(rest)
        if kind == "basic" and rest:
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                out.append(base64.b64decode(rest).decode().partition(":")[2])
    return [v for v in dict.fromkeys(out) if len(v.strip()) >= MIN_LENGTH]


def header_credentials(headers: Mapping[str, Any]) -> list[str]:
    """The credential texts among configured ``headers`` (the webhook connector's, an HTTP tool's):
    those of a header named as one (``Authorization``, ``X-API-Key``, a token or cookie) or whose
    value is a secret this process read (``secret:NAME``), with the part after a scheme
    (``Bearer X``: X). Other headers (``X-Team: alerts``) are not credentials."""
    out: list[str] = []
    for name, raw in headers.items():
        value = str(raw)
        if is_secret_key(str(name)) or is_known(value):
            out.append(value)
            rest = value.strip().partition(" ")[2]
            if rest:
                out.append(rest)
    return [v for v in dict.fromkeys(out) if len(v.strip()) >= MIN_LENGTH]


def url_credentials(url: str) -> list[str]:
    """The credential texts of a URL that is itself a credential (an incoming webhook's): the URL,
    its path and query, and the password in it."""
    parts = urlsplit(url)
    out = [url, parts.path + (f"?{parts.query}" if parts.query else ""), parts.path, parts.query]
    if parts.password:
        out.append(unquote(parts.password))
    return [v for v in dict.fromkeys(out) if len(v.strip()) >= MIN_LENGTH]


def mask_echoed(value: Any, credentials: list[str]) -> Any:
    """``value`` (a decoded answer) with every form of ``credentials`` in its texts (keys too) masked."""
    forms = sorted({f for c in credentials for f in _forms(c) if len(f) >= MIN_LENGTH}, key=len, reverse=True)
    if not forms:
        return value

    def text(s: str) -> str:
        for f in forms:
            if f in s:
                s = s.replace(f, MASK)
        return s

    def copy(v: Any, stack: list[tuple[Any, Any]]) -> Any:
        if isinstance(v, str):
            return text(v)
        if isinstance(v, dict | list):
            out: Any = {} if isinstance(v, dict) else []
            stack.append((v, out))  # filled below: no recursion, so any depth JSON decodes is walked
            return out
        return v

    stack: list[tuple[Any, Any]] = []
    root = copy(value, stack)
    while stack:
        src, dst = stack.pop()
        if isinstance(src, dict):
            for k, x in src.items():
                dst[text(k) if isinstance(k, str) else k] = copy(x, stack)
        else:
            dst.extend(copy(x, stack) for x in src)
    return root
