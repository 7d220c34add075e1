"""Errors of the model and tool layer.

They extend Podium's tree (see ``podium.errors``) and carry their retry intent, so that a step's
:class:`~podium.RetryPolicy`, the :class:`~podium.models.Gateway` and fallback chains all read it the
same way::

    PodiumError
    └── ModelError                   a model or tool call did not give a usable answer
        ├── ProviderError            the provider failed or refused (``retryable``, ``status``)
        │   ├── RateLimited          HTTP 429 and the like; ``retry_after`` seconds when known
        │   └── AllModelsFailed      every model of a fallback chain failed; ``attempts`` says how
        ├── ModelNotAvailable        an extra, a model file or an API key is missing (says how to fix)
        ├── CircuitOpen              the circuit breaker of this provider/model is open
        ├── OutputInvalid            structured output still invalid after the repair attempts
        ├── ToolError                a tool failed (``retryable`` for transient failures)
        └── CassetteMiss             a replayed cassette has no recording of this request
"""

from __future__ import annotations

from typing import Any

from ..errors import ExecutionError


class ModelError(ExecutionError):
    """A model or tool call did not give a usable answer.

    ``retryable`` tells retry loops whether trying again may help; ``non_retryable`` is its
    opposite, read by :class:`~podium.RetryPolicy` like on :class:`~podium.StepError`.
    """

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None, details: Any = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable
        self.details = details

    @property
    def non_retryable(self) -> bool:
        return not self.retryable


class ProviderError(ModelError):
    """The provider answered with an error, or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status: int | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message, retryable=retryable, details=details)
        self.provider = provider
        self.status = status
        self.retry_after = retry_after


class RateLimited(ProviderError):
    """The provider asked to slow down (HTTP 429 or 529). ``retry_after`` is in seconds, if given."""

    retryable = True


class AllModelsFailed(ProviderError):
    """Every model of a fallback chain failed. ``attempts`` lists each failure, in order."""

    def __init__(self, message: str, *, attempts: list[dict[str, Any]]) -> None:
        super().__init__(message, retryable=any(a.get("retryable") for a in attempts))
        self.trail = attempts
        self.attempts = attempts


class ModelNotAvailable(ModelError):
    """A model cannot be used here: an optional extra, a model file or an API key is missing."""


class CircuitOpen(ModelError):
    """The circuit breaker of a provider/model is open: calls fail fast until its probe succeeds."""

    retryable = True

    def __init__(self, message: str, *, key: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.retry_after = retry_after


class OutputInvalid(ModelError):
    """A structured output did not validate, even after the bounded repair attempts."""


class ToolError(ModelError):
    """A tool call failed. Agents show the message to the model so that it can try something else."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
        details: Any = None,
    ) -> None:
        super().__init__(message, retryable=retryable, details=details)
        self.retry_after = retry_after


class CassetteMiss(ModelError):
    """A cassette in replay mode has no recording of this request."""
