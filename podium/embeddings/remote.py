"""Embeddings from an OpenAI-compatible ``/v1/embeddings`` endpoint: OpenAI, Ollama, vLLM, LM Studio,
llama.cpp's server. The dimension is learned from the first answer."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ..secret import Secret
from ._base import Embedder, l2_normalize, numpy

#: Default base URLs by provider (``PODIUM_<PROVIDER>_BASE_URL`` overrides them, as for models).
BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "ollama": "http://127.0.0.1:11434/v1",
    "vllm": "http://127.0.0.1:8000/v1",
    "lmstudio": "http://127.0.0.1:1234/v1",
    "llamacpp": "http://127.0.0.1:8080/v1",
}


class OpenAIEmbedder(Embedder):
    """``POST {base_url}/embeddings`` with ``{"model": ..., "input": [...]}``.

    :param transport: an ``httpx`` transport (tests pass ``httpx.MockTransport``).
    """

    def __init__(
        self,
        model: str,
        *,
        provider: str = "openai",
        base_url: str | None = None,
        api_key: str | Secret | None = None,
        dimension: int = 0,
        batch_size: int = 64,
        normalize: bool = True,
        timeout: float = 60.0,
        transport: Any = None,
    ) -> None:
        self.name = f"{provider}:{model}"
        self.model = model
        env = os.environ.get(f"PODIUM_{provider.upper()}_BASE_URL")
        if provider == "openai":
            env = env or os.environ.get("OPENAI_BASE_URL")
        self.base_url = (base_url or env or BASE_URLS.get(provider) or BASE_URLS["openai"]).rstrip("/")
        self.api_key = Secret.wrap(  # shows as *** everywhere; revealed only for the header
            api_key
            if api_key is not None
            else os.environ.get("OPENAI_API_KEY")
            if provider == "openai"
            else None
        )
        self.dimension = dimension
        self.batch_size = batch_size
        self.normalize = normalize
        self.timeout = timeout
        self._transport = transport

    def encode(self, texts: Sequence[str]) -> Any:
        import httpx

        from ..models._errors import ModelNotAvailable, ProviderError

        np = numpy()
        headers = {"Authorization": f"Bearer {self.api_key.reveal()}"} if self.api_key else {}
        rows: list[list[float]] = []
        with httpx.Client(timeout=self.timeout, transport=self._transport, headers=headers) as http:
            for batch in self._batches(list(texts)):
                try:
                    r = http.post(
                        f"{self.base_url}/embeddings", json={"model": self.model, "input": list(batch)}
                    )
                    r.raise_for_status()
                except httpx.HTTPError as exc:
                    raise ModelNotAvailable(
                        f"embeddings from {self.name} at {self.base_url} failed: {exc}"
                    ) from exc
                try:
                    data = sorted(r.json()["data"], key=lambda d: d.get("index", 0))
                    got = [[float(x) for x in d["embedding"]] for d in data]
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise ProviderError(
                        f"{self.name} at {self.base_url} answered something other than embeddings: "
                        f"{r.text[:200]!r}",
                        provider=self.name.partition(":")[0],
                        retryable=True,
                    ) from exc
                if len(got) != len(batch) or len({len(v) for v in [*rows[:1], *got]}) != 1:
                    raise ProviderError(
                        f"{self.name} at {self.base_url} answered {len(got)} vectors of sizes "
                        f"{sorted({len(v) for v in got})} for {len(batch)} texts",
                        provider=self.name.partition(":")[0],
                        retryable=True,
                    )
                rows.extend(got)
        if not rows:
            return np.zeros((0, self.dimension), dtype=np.float32)
        matrix = np.asarray(rows, dtype=np.float32)
        self.dimension = int(matrix.shape[1])
        return l2_normalize(matrix) if self.normalize else matrix
