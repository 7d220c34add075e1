"""Models behind one small interface, chosen by a ``"provider:model"`` string.

>>> model = get_model("openai:gpt-4o-mini")          # or anthropic:..., ollama:llama3, local:smollm2-135m
>>> response = await model.complete(Request(messages=(Message.user("hi"),)))

Providers are imported when first used; a missing extra raises :class:`ModelNotAvailable` saying what
to install. Inside a workflow, call models through :mod:`podium.ai` so that each call is a durable,
accounted step.
"""

from __future__ import annotations

from ._base import ZERO_USAGE, Message, Model, Request, Response, TextSink, ToolCall, ToolSpec, Usage
from ._errors import (
    AllModelsFailed,
    CassetteMiss,
    CircuitOpen,
    ModelError,
    ModelNotAvailable,
    OutputInvalid,
    ProviderError,
    RateLimited,
    ToolError,
)
from ._factory import (
    DEFAULT_ANTHROPIC as DEFAULT_ANTHROPIC,
)
from ._factory import (
    DEFAULT_LOCAL as DEFAULT_LOCAL,
)
from ._factory import (
    DEFAULT_OPENAI as DEFAULT_OPENAI,
)
from ._factory import (
    default_model_spec,
    get_model,
    providers,
    register_provider,
)
from ._gateway import FallbackModel, Gateway, GuardedModel, default_gateway, set_default_gateway
from ._prices import DEFAULT_PRICES, Price

__all__ = [
    "DEFAULT_PRICES",
    "ZERO_USAGE",
    "AllModelsFailed",
    "CassetteMiss",
    "CircuitOpen",
    "FallbackModel",
    "Gateway",
    "GuardedModel",
    "Message",
    "Model",
    "ModelError",
    "ModelNotAvailable",
    "OutputInvalid",
    "Price",
    "ProviderError",
    "RateLimited",
    "Request",
    "Response",
    "TextSink",
    "ToolCall",
    "ToolError",
    "ToolSpec",
    "Usage",
    "default_gateway",
    "default_model_spec",
    "get_model",
    "providers",
    "register_provider",
    "set_default_gateway",
]
