"""Cron expressions of schedule triggers, checked with croniter (the ``server`` extra) the way the
trigger runner reads them, so that a schedule that would fail at its first tick fails validation
instead (``podium workflows validate``, and the server when it reads its triggers)."""

from __future__ import annotations

from typing import Any


def cron_problem(expr: Any, timezone: str | None = None) -> str | None:
    """Why ``expr`` (in ``timezone``) cannot be a schedule, or None. Without croniter installed only
    the shape is checked by the workflow loader; the server needs croniter anyway."""
    if not isinstance(expr, str) or not expr.strip():
        return f"schedule {expr!r} is not a cron expression; write five fields, e.g. '0 9 * * 1-5'"
    try:
        from croniter import croniter
    except ImportError:
        return None
    import datetime as dt
    from zoneinfo import ZoneInfo

    try:
        tz = ZoneInfo(timezone) if timezone else dt.UTC
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        return f"schedule {expr!r}: time zone {timezone!r} is unknown ({exc}); use an IANA name such as Europe/Paris"
    try:
        croniter(expr, dt.datetime.now(tz)).get_next(float)
    except Exception as exc:  # croniter's errors are ValueErrors, KeyErrors and its own
        return (
            f"schedule {expr!r} is not a valid cron expression ({exc}); five fields: minute 0-59, "
            "hour 0-23, day 1-31, month 1-12, weekday 0-6, e.g. '0 9 * * 1-5', or @hourly/@daily"
        )
    return None
