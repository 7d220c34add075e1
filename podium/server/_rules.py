"""Threshold rules: start a workflow when an event's payload crosses a value (``podium serve --rule``)."""

from __future__ import annotations

import fnmatch
import math
import operator
import re
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True, kw_only=True)
class Rule:
    """Start ``workflow`` when an event's payload crosses a threshold: ``when="churn_score > 0.8"``."""

    name: str
    when: str
    """``FIELD OP NUMBER``; FIELD may be dotted (``scores.churn``); OP is one of > >= < <= == !=."""
    workflow: str
    event: str = "*"
    """Which event types the rule looks at (``*`` and ``?`` wildcards)."""

    def check(self) -> tuple[str, Any, float]:
        m = _RULE.fullmatch(self.when.strip())
        if m is None:
            raise ConfigError(
                f"rule {self.name!r}: {self.when!r} is not a threshold; write FIELD OP NUMBER, e.g. 'churn_score > 0.8'"
            )
        return m["field"], _OPS[m["op"]], float(m["value"])

    def _value(self, event_type: str, payload: Any) -> Any:
        """The number the rule looks at in ``payload`` (None: the rule does not look at this event)."""
        if not fnmatch.fnmatchcase(event_type, self.event) or not isinstance(payload, dict):
            return None
        value: Any = payload
        for part in self.check()[0].split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    def matches(self, event_type: str, payload: Any) -> bool:
        value = self._value(event_type, payload)
        if value is None or not math.isfinite(value):  # NaN: see undecided()
            return False
        _, op, threshold = self.check()
        return bool(op(value, threshold))

    def undecided(self, event_type: str, payload: Any) -> str | None:
        """Why the rule cannot decide on this event: its field holds NaN or an infinity (a model's or
        an API's score), which is neither above nor below the threshold, so ``risk > 0.8`` and
        ``risk <= 0.8`` would both let it pass unseen. None: it decides (or does not look at it)."""
        value = self._value(event_type, payload)
        if value is None or math.isfinite(value):
            return None
        return (
            f"rule {self.name!r}: {self.check()[0]} is {value!r}, not a number, so {self.when!r} cannot be decided "
            f"(it would not start {self.workflow!r} whichever way the threshold is written); send a number"
        )


_RULE = re.compile(r"(?P<field>[A-Za-z_][\w.]*)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>-?\d+(\.\d+)?)")
_OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
