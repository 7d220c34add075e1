"""Models by ``"provider:model"`` string: the provider table, registration of custom providers, and
the default model. Providers are imported when first used."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any

from ._base import Model
from ._errors import ModelNotAvailable

# provider -> (module, class, default options)
_PROVIDERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "openai": ("podium.models.openai", "OpenAIModel", {}),
    "ollama": ("podium.models.openai", "OpenAIModel", {"base_url": "http://127.0.0.1:11434/v1"}),
    "vllm": ("podium.models.openai", "OpenAIModel", {"base_url": "http://127.0.0.1:8000/v1"}),
    "lmstudio": ("podium.models.openai", "OpenAIModel", {"base_url": "http://127.0.0.1:1234/v1"}),
    "llamacpp": (
        "podium.models.openai",
        "OpenAIModel",
        {"base_url": "http://127.0.0.1:8080/v1", "structured": "json_object"},
    ),
    "anthropic": ("podium.models.anthropic", "AnthropicModel", {}),
    "local": ("podium.models.local", "LocalModel", {}),
}
_CUSTOM: dict[str, Callable[..., Model]] = {}

DEFAULT_LOCAL = "local:smollm2-135m"
DEFAULT_OPENAI = "openai:gpt-4o-mini"
DEFAULT_ANTHROPIC = "anthropic:claude-3-5-haiku-latest"


def register_provider(name: str, factory: Callable[..., Model]) -> None:
    """Make ``get_model("name:model")`` call ``factory("model", **options)``."""
    _CUSTOM[name] = factory


def providers() -> list[str]:
    """Names of the known providers."""
    return sorted({*_PROVIDERS, *_CUSTOM})


def get_model(spec: str, **options: Any) -> Model:
    """A model by ``"provider:model"``: ``openai:gpt-4o-mini``, ``anthropic:claude-3-5-haiku-latest``,
    ``ollama:llama3``, ``vllm:...``, ``lmstudio:...``, ``llamacpp:...``, ``local:smollm2-135m`` or
    ``local:/path/to/model.gguf``.

    Options go to the provider: ``base_url``, ``api_key``, ``timeout``, ``structured``... The model
    is bare: wrap it with a :class:`Gateway` (``gateway.model(spec)``) for limits, retries and fallbacks.
    """
    provider, sep, name = spec.partition(":")
    if not sep or not provider or not name:
        raise ModelNotAvailable(
            f"model {spec!r} is not 'provider:model'; for example 'openai:gpt-4o-mini' or "
            f"'local:smollm2-135m' (providers: {', '.join(providers())})"
        )
    if provider in _CUSTOM:
        return _CUSTOM[provider](name, **options)
    if provider not in _PROVIDERS:
        import difflib

        close = difflib.get_close_matches(provider, providers(), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"providers: {', '.join(providers())}"
        raise ModelNotAvailable(f"unknown model provider {provider!r} in {spec!r}; {hint}")
    module, cls, defaults = _PROVIDERS[provider]
    factory = getattr(importlib.import_module(module), cls)
    return factory(name, **{"provider": provider, **defaults, **options})


def default_model_spec() -> str:
    """The model used when none is named: ``$PODIUM_MODEL``; else OpenAI if ``OPENAI_API_KEY`` is set;
    else Anthropic if ``ANTHROPIC_API_KEY`` is set; else the embedded local model (no key needed)."""
    from ..settings import setting

    configured = setting("model")  # $PODIUM_MODEL, else podium.toml / [tool.podium]
    if configured:
        return str(configured)
    if os.environ.get("OPENAI_API_KEY"):
        return DEFAULT_OPENAI
    if os.environ.get("ANTHROPIC_API_KEY"):
        return DEFAULT_ANTHROPIC
    return DEFAULT_LOCAL


def default_model_source() -> str | None:
    """Where the default model's spec was set (``$PODIUM_MODEL``, ``podium.toml (PATH)``), or None
    when Podium chose it (an API key in the environment, or the embedded model)."""
    from ..settings import load_settings, setting

    if os.environ.get("PODIUM_MODEL"):
        return "$PODIUM_MODEL"
    if setting("model"):
        return load_settings().source("model")
    return None


def not_available_from_default(exc: ModelNotAvailable, spec: str) -> ModelNotAvailable:
    """``exc`` (the default model ``spec`` cannot be made) saying where that spec was set and how to
    change it; ``exc`` itself when Podium chose the model."""
    where = default_model_source()
    if where is None:
        return exc
    fix = (
        "set PODIUM_MODEL to provider:model (for example local:smollm2-135m), or unset it"
        if where == "$PODIUM_MODEL"
        else f"change model in {where}"
    )
    return ModelNotAvailable(f"{exc} (the default model {spec!r} comes from {where}; {fix})", retryable=exc.retryable, details=exc.details)
