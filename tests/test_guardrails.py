"""PII detection and redaction: what it must find, and what it must leave alone."""

from __future__ import annotations

import pytest

from podium.guardrails import contains_pii, find_pii, redact, redact_value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to ana.lopez@example.co.uk today", "write to [EMAIL] today"),
        ("card 4111 1111 1111 1111 expires", "card [CARD] expires"),
        ("card 4111-1111-1111-1111", "card [CARD]"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN] please"),
        ("IBAN GB82WEST12345698765432", "IBAN [IBAN]"),
        ("call +44 20 7946 0958 or (555) 123-4567", "call [PHONE] or [PHONE]"),
        ("SSN 123-45-6789", "SSN [SSN]"),
        ("NI number AB 12 34 56 C", "NI number [NINO]"),
    ],
)
def test_redacts(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("order 4111 1111 1111 1112 shipped", "CARD"),  # fails the Luhn check
        ("IBAN DE89 3704 0044 0532 0130 01", "IBAN"),  # fails mod-97
        ("total 1250.00 EUR on 2026-11-23", "CARD"),
        ("version 3.11.7, build 42", "PHONE"),
        ("SSN 000-12-3456", "SSN"),  # invalid area number
        ("reach me at ana at example dot com", "EMAIL"),
    ],
)
def test_leaves_lookalikes_alone(text, kind):
    assert kind not in {f.kind for f in find_pii(text)}


def test_kinds_filter_and_values():
    text = "ana@example.com, 4111111111111111"
    assert redact(text, kinds=["CARD"]) == "ana@example.com, [CARD]"
    assert contains_pii(text) and not contains_pii("nothing here")
    assert redact_value({"to": ["ana@example.com"], "n": 3}) == {"to": ["[EMAIL]"], "n": 3}


def test_presidio_is_an_explicit_option():
    try:
        import presidio_analyzer  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install presidio-analyzer"):
            find_pii("Ana Lopez lives in Madrid", use_presidio=True)
    else:  # pragma: no cover - only where the option is installed
        kinds = {f.kind for f in find_pii("Ana Lopez lives in Madrid", use_presidio=True)}
        assert "PERSON" in kinds


@pytest.mark.parametrize(
    "text",
    [
        "the meeting is on 2024-11-23",  # ISO date: pii_local_only refused this prompt (contains_pii)
        "due 2024-11-23 14:30:00",
        "born 23/11/1984, renewed 23.11.2024",
        "between 2024/11/23 and 2024.12.01",
        "server 192.168.100.254 and 10.0.0.1",
        "see 2001:db8::1 and 8.8.8.8",
        "invoice INV-2024-00123 and inv 2024-000517",
        "invoice no. 2024/0042/17, order #20241123-0042",
        "PO 4500012345 shipped, ticket 12345678",
        "amounts 1 250 000 and 3.141.592",
        "version 3.11.7, build 42",
    ],
)
def test_dates_ips_and_invoice_numbers_are_not_phones(text):
    assert "PHONE" not in {f.kind for f in find_pii(text)}, find_pii(text)
    assert not contains_pii(text)


@pytest.mark.parametrize(
    "phone",
    [
        "+44 20 7946 0958",
        "+1 (555) 123-4567",
        "+1-202-555-0143",
        "(555) 123-4567",
        "555-123-4567",
        "555.123.4567",
        "020 7946 0958",
        "07700 900123",
        "+33 1 42 68 53 00",
        "+49 30 901820",
        "+91 98765 43210",
        "+14155552671",
        "0044 20 7946 0958",
    ],
)
def test_real_phone_numbers_are_found(phone):
    text = f"call me on {phone} tomorrow"
    assert redact(text, kinds=["PHONE"]) == "call me on [PHONE] tomorrow", find_pii(text)

