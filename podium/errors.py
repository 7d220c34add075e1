"""Podium's exceptions: the whole tree, drawn once.

Three branches, kept apart so that handling one never swallows another::

    PodiumError                        base of everything Podium raises on purpose
    ├── DefinitionError                a mistake in what a person wrote: fix it and try again
    │   ├── ConfigError                a setting, store URL, option, CLI argument or file is wrong
    │   │   ├── InputValidationError   a run input or a step value does not match its declared type
    │   │   └── AlertsFileError        (podium.telemetry) an alerts file is wrong
    │   └── WorkflowFileError          (podium.yaml) a workflow file is wrong; every problem with file:line
    └── ExecutionError                 something failed while working
        ├── NotFound                   a run, step, workflow, prompt or user that does not exist
        ├── AuthError                  no valid token: unknown, expired or revoked
        │   └── PermissionDenied       the principal lacks the permission for this action
        ├── KillSwitchActive           a kill switch stops what was asked
        ├── StepError                  raised by step code to control retries
        │   └── NonRetryableError      fail the step now, whatever its retry policy says
        │       ├── PolicyViolation    a call the workflow's policy forbids (tool, provider, budget)
        │       │   └── OutputBlocked  a model's answer failed a validator of the policy
        │       └── CapabilityDenied   a workflow reached for something not registered for it
        ├── StepTimeout                a step attempt ran past its timeout (retryable)
        ├── RunFailed                  a run ended failed; carries the run id and the step error
        │   └── RunCancelled           a run ended cancelled
        ├── StoreError                 the store could not do what was asked
        │   └── LeaseLost              another engine owns this run now; stop touching it
        ├── SerializationError         a value cannot be stored (not JSON, dataclass or pydantic)
        ├── ConnectorError             a connector's operation failed (``retryable``, ``retry_after``)
        │   ├── ConnectorCircuitOpen   the connector's breaker is open after repeated failures
        │   └── ConnectorDrift         a result did not match its operation's contract (quarantined)
        └── ModelError                 (podium.models) a model or tool call gave no usable answer
            ├── ProviderError          the provider answered with an error or could not be reached
            │   ├── RateLimited        ... because of a rate limit (retryable, after Retry-After)
            │   └── AllModelsFailed    every model of a fallback chain failed
            ├── ModelNotAvailable      an unknown provider, or its extra is not installed
            ├── CircuitOpen            the provider's breaker is open after repeated failures
            ├── OutputInvalid          the answer does not match the requested structure
            ├── ToolError              a tool call failed
            └── CassetteMiss           a recorded-call cassette has no answer for this request

    ControlSignal (BaseException)      control flow, not failure: the engine catches these
    ├── Suspend                        a step waits for a signal, an approval or a timer (the run parks)
    └── Shutdown                       the engine stops and hands the run back unfinished

Control signals derive from ``BaseException`` (like ``asyncio.CancelledError``), so an
``except Exception`` in step code cannot swallow them. Everything above is importable from
:mod:`podium` (model errors also from :mod:`podium.models`, :class:`WorkflowFileError` from
:mod:`podium.yaml`, :class:`AlertsFileError` from :mod:`podium.telemetry`).
"""

from __future__ import annotations

import traceback
from typing import Any

from .secret import redact_known


class PodiumError(Exception):
    """Base class of every error Podium raises on purpose.

    ``str(err)`` is one paragraph a person can act on: what is wrong, where, and how to fix it.
    """


class DefinitionError(PodiumError):
    """A mistake in what a person wrote (a workflow, a setting, an input). ``problems`` lists every
    problem found, not just the first."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = problems or [message]
        super().__init__(message)


class ExecutionError(PodiumError):
    """Something failed while working: a missing run, a refused action, a step, a store, a model."""


class ConfigError(DefinitionError):
    """A setting, store URL, CLI argument or input is wrong."""


class InputValidationError(ConfigError):
    """A value does not match the type declared for it (run input, step argument or step output)."""


class NotFound(ExecutionError):
    """The run, step or workflow asked for does not exist."""


class AuthError(ExecutionError):
    """The token is missing, unknown, expired or revoked."""


class PermissionDenied(AuthError):
    """The acting principal lacks the permission an action needs."""


class KillSwitchActive(ExecutionError):
    """A kill switch forbids this (a workflow, step kind, provider, or everything is switched off)."""


class StepError(ExecutionError):
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


class StepTimeout(ExecutionError):
    """A step attempt did not finish within its ``timeout``."""


class RunFailed(ExecutionError):
    """A run finished in the failed state. ``error`` is the stored error of the failing step."""

    def __init__(self, message: str, *, run_id: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.error = error or {}


class RunCancelled(RunFailed):
    """A run was cancelled before it finished."""


class StoreError(ExecutionError):
    """The store failed or refused an operation."""


class LeaseLost(StoreError):
    """Another engine has taken over this run (its lease expired); this engine must stop driving it."""


class SerializationError(ExecutionError):
    """A value cannot be serialized for the store."""


class ConnectorError(ExecutionError):
    """A connector's operation failed (see :mod:`podium.connectors`).

    ``retryable`` says whether trying again may help (a timeout, HTTP 429 or 5xx, a lost connection);
    ``retry_after`` is the seconds the system asked to wait, if it said. A non-retryable error (HTTP
    4xx, a constraint violation, an unknown operation) also fails the step at once, whatever its
    retry policy says."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        connector: str = "",
        operation: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.non_retryable = not retryable
        self.retry_after = retry_after
        self.connector = connector
        self.operation = operation
        self.status = status


class ConnectorCircuitOpen(ConnectorError):
    """The connector's circuit breaker is open after repeated failures: calls fail fast until
    ``retry_after`` seconds pass and one probe call is let through."""

    def __init__(self, message: str, *, retry_after: float | None = None, connector: str = "") -> None:
        super().__init__(message, retryable=True, retry_after=retry_after, connector=connector)


class ConnectorDrift(ConnectorError):
    """A connector's result did not match its operation's contract (a field missing, renamed,
    retyped, nested, an unknown enum value). The result was set aside in the quarantine
    (``quarantine_id``; ``podium quarantine show ID``) before anything used it. ``diff`` lists what
    changed (``{"kind", "path", "message", ...}``). Never retryable: calling again gets the same shape;
    add a field mapping and replay the item (``podium quarantine replay ID``)."""

    def __init__(
        self,
        message: str,
        *,
        diff: list[dict[str, Any]] | None = None,
        payload: Any = None,
        quarantine_id: str | None = None,
        connector: str = "",
        operation: str = "",
    ) -> None:
        super().__init__(message, connector=connector, operation=operation)
        self.diff = list(diff or [])
        self.payload = payload
        """The raw result as the system sent it (business data: never logged nor audited)."""
        self.quarantine_id = quarantine_id


class PolicyViolation(NonRetryableError):
    """A call the workflow's policy does not allow (a tool, a provider, a budget)."""


class CapabilityDenied(NonRetryableError):
    """A workflow reached for something that is not registered, or not allowed by its entry (a
    function, an MCP server, a host, a folder). Fails the step at once: the message says what,
    where, and how an admin allows it."""


class OutputBlocked(PolicyViolation):
    """A model's answer failed a validator its workflow's policy names, and was not let through."""


class ControlSignal(BaseException):
    """Control flow the engine catches (a step parks, the engine stops); never a failure."""


class Suspend(ControlSignal):
    """The step waits for a signal, an approval or a timer; the run is parked until it comes."""

    def __init__(self, name: str, deadline: float | None) -> None:
        super().__init__(name)
        self.name = name
        self.deadline = deadline


class Shutdown(ControlSignal):
    """The engine is shutting down and hands the run back unfinished (not a cancellation)."""


# The engine's own names for its signals.
_Suspend = Suspend
_Shutdown = Shutdown


def error_info(exc: BaseException, *, with_traceback: bool = True) -> dict[str, Any]:
    """A stored error: type, message, and the traceback (for ``show``). The secret values this
    process knows are masked (a remote answer that echoes a stored secret), since another process
    that shows the error may not know them; credential shapes are masked when shown."""
    info: dict[str, Any] = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": redact_known(str(exc))}
    if with_traceback:
        info["traceback"] = redact_known("".join(traceback.format_exception(exc)))
    return info


def install_hint(extra: str) -> str:
    """The command that installs ``extra`` for this installation of Podium: ``pip install -e
    '/path/to/podium[server]'`` for a source checkout (Podium is not on a package index yet), else
    ``pip install 'podium[server]'``. What every missing-dependency message tells the user to run."""
    import json
    from importlib import metadata
    from urllib.parse import unquote, urlparse

    found: dict[str, Any] = {}
    for dist in metadata.distributions(name="podium"):  # a checkout's own egg-info may come first
        try:
            text = dist.read_text("direct_url.json")
            found = json.loads(text) if text else {}
        except ValueError:
            continue
        if found:
            break
    url = found.get("url", "")
    if url.startswith("file://"):
        path = unquote(urlparse(url).path)
        editable = found.get("dir_info", {}).get("editable", False)
        return f"pip install {'-e ' if editable else ''}'{path}[{extra}]'"
    return f"pip install 'podium[{extra}]'"
