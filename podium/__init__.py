"""Podium: durable AI orchestration.

Define a :class:`Workflow` of plain Python steps, run it with a :class:`Client` on a durable store,
and every step's result is kept: a run survives a crash and resumes without redoing finished work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine.client import Client, RunHandle
    from .engine.context import StepContext
    from .engine.history import RunHistory
    from .engine.loading import load_workflow
    from .engine.prompts import PromptVersion
    from .engine.workflow import Escalate, Loop, Workflow
    from .errors import (
        AuthError,
        CapabilityDenied,
        ConfigError,
        ConnectorCircuitOpen,
        ConnectorDrift,
        ConnectorError,
        ControlSignal,
        DefinitionError,
        ExecutionError,
        InputValidationError,
        KillSwitchActive,
        LeaseLost,
        NonRetryableError,
        NotFound,
        OutputBlocked,
        PermissionDenied,
        PodiumError,
        PolicyViolation,
        RunCancelled,
        RunFailed,
        SerializationError,
        StepError,
        StepTimeout,
        StoreError,
    )
    from .governance.policy import Policy
    from .records import Event, EventType, RetryPolicy, RunRecord, RunStatus, StepStatus, StepView
    from .storage import Store, open_store

# Names are imported on first use (PEP 562), so that `podium --help` and `import podium` stay fast.
_LAZY = {
    "Client": ".engine.client",
    "RunHandle": ".engine.client",
    "load_workflow": ".engine.loading",
    "StepContext": ".engine.context",
    "RunHistory": ".engine.history",
    "Loop": ".engine.workflow",
    "Escalate": ".engine.workflow",
    "Policy": ".governance.policy",
    "PromptVersion": ".engine.prompts",
    "Workflow": ".engine.workflow",
    "Store": ".storage",
    "open_store": ".storage",
    **dict.fromkeys(
        (
            "AuthError",
            "CapabilityDenied",
            "ConfigError",
            "ConnectorCircuitOpen",
            "ConnectorDrift",
            "ConnectorError",
            "ControlSignal",
            "DefinitionError",
            "ExecutionError",
            "InputValidationError",
            "KillSwitchActive",
            "LeaseLost",
            "NonRetryableError",
            "NotFound",
            "OutputBlocked",
            "PermissionDenied",
            "PodiumError",
            "PolicyViolation",
            "RunCancelled",
            "RunFailed",
            "SerializationError",
            "StepError",
            "StepTimeout",
            "StoreError",
        ),
        ".errors",
    ),
    **dict.fromkeys(
        ("Event", "EventType", "RetryPolicy", "RunRecord", "RunStatus", "StepStatus", "StepView"), ".records"
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'podium' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "AuthError",
    "CapabilityDenied",
    "Client",
    "ConfigError",
    "ConnectorCircuitOpen",
    "ConnectorDrift",
    "ConnectorError",
    "ControlSignal",
    "DefinitionError",
    "Escalate",
    "Event",
    "EventType",
    "ExecutionError",
    "InputValidationError",
    "KillSwitchActive",
    "LeaseLost",
    "Loop",
    "NonRetryableError",
    "NotFound",
    "OutputBlocked",
    "PermissionDenied",
    "PodiumError",
    "Policy",
    "PolicyViolation",
    "PromptVersion",
    "RetryPolicy",
    "RunCancelled",
    "RunFailed",
    "RunHandle",
    "RunHistory",
    "RunRecord",
    "RunStatus",
    "SerializationError",
    "StepContext",
    "StepError",
    "StepStatus",
    "StepTimeout",
    "StepView",
    "Store",
    "StoreError",
    "Workflow",
    "__version__",
    "load_workflow",
    "open_store",
    "run",
]


def run(
    workflow: Workflow, input: Any = None, *, store: str | Store | None = "memory://", **client_options: Any
) -> Any:
    """Run ``workflow`` to completion from synchronous code and return its output.

    Uses an in-memory store unless ``store`` says otherwise (``"sqlite:///podium.db"``).
    """

    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop here: the synchronous caller this is for
    else:  # a notebook or an async function: asyncio.run would refuse, in its own words
        from .errors import ConfigError

        raise ConfigError(
            "podium.run() is for synchronous code, and this code runs in an event loop (an async function, "
            "a Jupyter notebook): there, write `async with podium.Client(...) as client: output = await "
            "client.run(workflow, input)` (the same store and options)"
        )
    from .engine.client import Client

    async def main() -> Any:
        async with Client(store, **client_options) as client:
            return await client.run(workflow, input)

    return asyncio.run(main())
