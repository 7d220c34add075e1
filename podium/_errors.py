"""Podium's exceptions.

Three families, kept apart so that handling one never swallows another::

    PodiumError                      base of everything Podium raises on purpose
    ├── DefinitionError              a workflow is defined wrongly (fix the code or the YAML)
    ├── ConfigError                  a store URL, an option or an input is wrong
    │   └── InputValidationError     a run input or a step value does not match its declared type
    ├── NotFound                     a run, step or workflow that does not exist
    ├── AuthError                    no valid token: unknown, expired or revoked
    │   └── PermissionDenied         the principal lacks the permission for this action
    ├── KillSwitchActive             a kill switch stops what was asked
    ├── StepError                    raised by step code to control retries
    │   └── NonRetryableError        fail the step now, whatever its retry policy says
    ├── StepTimeout                  a step attempt ran past its timeout (retryable)
    ├── RunFailed                    a run ended failed; carries the run id and the step error
    │   └── RunCancelled             a run ended cancelled
    ├── StoreError                   the store could not do what was asked
    │   └── LeaseLost                another engine owns this run now; stop touching it
    └── SerializationError           a value cannot be stored (not JSON, dataclass or pydantic)

Control-flow signals derive from ``BaseException`` (like ``asyncio.CancelledError``), so an
``except Exception`` in user code cannot swallow them.
"""

from __future__ import annotations

import traceback
from typing import Any


class PodiumError(Exception):
    """Base class of every error Podium raises on purpose.

    ``str(err)`` is one paragraph a person can act on: what is wrong, where, and how to fix it.
    """


class DefinitionError(PodiumError):
    """A workflow definition is wrong. ``problems`` lists every problem found, not just the first."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message)


class ConfigError(PodiumError):
    """A setting, store URL, CLI argument or input is wrong."""


class InputValidationError(ConfigError):
    """A value does not match the type declared for it (run input, step argument or step output)."""


class NotFound(PodiumError):
    """The run, step or workflow asked for does not exist."""


class AuthError(PodiumError):
    """The token is missing, unknown, expired or revoked."""


class PermissionDenied(AuthError):
    """The acting principal lacks the permission an action needs."""


class KillSwitchActive(PodiumError):
    """A kill switch forbids this (a workflow, step kind, provider, or everything is switched off)."""


class StepError(PodiumError):
    """Raise from step code to fail the current attempt.

    Set ``non_retryable=True`` to fail the step at once, without further attempts.
    """

    def __init__(self, message: str, *, non_retryable: bool = False, details: Any = None) -> None:
        super().__init__(message)
        self.non_retryable = non_retryable
        self.details = details


class NonRetryableError(StepError):
    """Fail the step now; no retry policy retries it."""

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message, non_retryable=True, details=details)


class StepTimeout(PodiumError):
    """A step attempt did not finish within its ``timeout``."""


class RunFailed(PodiumError):
    """A run finished in the failed state. ``error`` is the stored error of the failing step."""

    def __init__(self, message: str, *, run_id: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.error = error or {}


class RunCancelled(RunFailed):
    """A run was cancelled before it finished."""


class StoreError(PodiumError):
    """The store failed or refused an operation."""


class LeaseLost(StoreError):
    """Another engine has taken over this run (its lease expired); this engine must stop driving it."""


class SerializationError(PodiumError):
    """A value cannot be serialized for the store."""


class _Suspend(BaseException):
    """Internal: the step waits for a signal or a timer; the run is parked until it comes."""

    def __init__(self, name: str, deadline: float | None) -> None:
        super().__init__(name)
        self.name = name
        self.deadline = deadline


class _Shutdown(BaseException):
    """Internal: the engine is shutting down and hands the run back unfinished (not a cancellation)."""


def error_info(exc: BaseException, *, with_traceback: bool = True) -> dict[str, Any]:
    """A stored error: type, message, and the traceback (for ``show``)."""
    info: dict[str, Any] = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc)}
    if with_traceback:
        info["traceback"] = "".join(traceback.format_exception(exc))
    return info
