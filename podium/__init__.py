"""Podium: durable AI orchestration.

Define a :class:`Workflow` of plain Python steps, run it with a :class:`Client` on a durable store,
and every step's result is kept: a run survives a crash and resumes without redoing finished work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._client import Client, RunHandle
    from ._context import StepContext
    from ._errors import (
        ConfigError,
        DefinitionError,
        InputValidationError,
        LeaseLost,
        NonRetryableError,
        NotFound,
        PodiumError,
        RunCancelled,
        RunFailed,
        SerializationError,
        StepError,
        StepTimeout,
        StoreError,
    )
    from ._history import RunHistory
    from ._loading import load_workflow
    from ._models import Event, EventType, RetryPolicy, RunRecord, RunStatus, StepStatus, StepView
    from ._policy import Policy, PolicyViolation
    from ._prompts import PromptVersion
    from ._workflow import Escalate, Loop, Workflow
    from .storage import Store, open_store

# Names are imported on first use (PEP 562), so that `podium --help` and `import podium` stay fast.
_LAZY = {
    "Client": "._client",
    "RunHandle": "._client",
    "load_workflow": "._loading",
    "StepContext": "._context",
    "RunHistory": "._history",
    "Loop": "._workflow",
    "Escalate": "._workflow",
    "Policy": "._policy",
    "PolicyViolation": "._policy",
    "PromptVersion": "._prompts",
    "Workflow": "._workflow",
    "Store": ".storage",
    "open_store": ".storage",
    **dict.fromkeys(
        (
            "ConfigError",
            "DefinitionError",
            "InputValidationError",
            "LeaseLost",
            "NonRetryableError",
            "NotFound",
            "PodiumError",
            "RunCancelled",
            "RunFailed",
            "SerializationError",
            "StepError",
            "StepTimeout",
            "StoreError",
        ),
        "._errors",
    ),
    **dict.fromkeys(
        ("Event", "EventType", "RetryPolicy", "RunRecord", "RunStatus", "StepStatus", "StepView"), "._models"
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
    "Client",
    "ConfigError",
    "DefinitionError",
    "Escalate",
    "Event",
    "EventType",
    "InputValidationError",
    "LeaseLost",
    "Loop",
    "NonRetryableError",
    "NotFound",
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

    from ._client import Client

    async def main() -> Any:
        async with Client(store, **client_options) as client:
            return await client.run(workflow, input)

    import asyncio

    return asyncio.run(main())
