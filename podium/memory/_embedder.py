"""Embedders for memory and knowledge, by ``provider:model`` (each loaded once per process), and the
one a step uses: the same model, with the run's policy in front of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..embeddings import Embedder

if TYPE_CHECKING:
    from ..engine.context import StepContext

DEFAULT_EMBEDDER = "local:all-minilm-l6-v2"
_EMBEDDERS: dict[str, Embedder] = {}


def resolve_embedder(spec: str | Embedder | None) -> Embedder:
    """An embedder by ``provider:model`` (loaded once per process: models take seconds to load)."""
    if isinstance(spec, Embedder):
        return spec
    from ..embeddings import get_embedder

    spec = spec or DEFAULT_EMBEDDER
    if spec not in _EMBEDDERS:
        _EMBEDDERS[spec] = get_embedder(spec)
    return _EMBEDDERS[spec]


class Governed(Embedder):
    """``inner`` as a step of a run uses it: each text goes through the run's policy first
    (:func:`podium.governance.enforcement.check_embedding`: allowed providers, kill switches,
    ``pii_local_only``, ``redact: [prompts]``), whoever chose the embedder. The name, dimension and
    vectors are ``inner``'s, so what it stores is found by the plain embedder and the other way round."""

    def __init__(self, inner: Embedder, ctx: StepContext, what: str) -> None:
        self.inner, self.ctx, self.what = inner, ctx, what
        self.name, self.normalize, self.batch_size = inner.name, inner.normalize, inner.batch_size

    @property
    def dimension(self) -> int:  # a remote embedder learns its own from its first answer
        return self.inner.dimension

    @dimension.setter
    def dimension(self, value: int) -> None:
        self.inner.dimension = value

    def encode(self, texts: Sequence[str]) -> Any:
        raise RuntimeError(f"{self.what}: a step's embedder is called with embed(), which applies the policy")

    async def embed(self, texts: Sequence[str]) -> Any:
        from ..governance.enforcement import check_embedding

        return await self.inner.embed(await check_embedding(self.ctx, self.inner, list(texts), what=self.what))


def governed(embedder: Embedder, ctx: StepContext, what: str) -> Embedder:
    """``embedder`` behind the policy of ``ctx``'s run."""
    return embedder if isinstance(embedder, Governed) else Governed(embedder, ctx, what)


__all__ = ["DEFAULT_EMBEDDER", "Governed", "governed", "resolve_embedder"]
