"""The embedder conformance suite: every :class:`~podium.embeddings.Embedder` in the repository must pass it.

Each case runs against the real implementation:

- ``hash``: the model-free bag-of-words embedder (``hash:256``);
- ``local``: all-MiniLM-L6-v2 through onnxruntime (``local:all-minilm-l6-v2``);
- ``remote``: the OpenAI-compatible ``/v1/embeddings`` client against a real ``llama_cpp.server`` in
  embedding mode on 127.0.0.1 (SmolLM2 with mean pooling, 576 dimensions).

What the contract says (``podium/embeddings/_base.py``): texts in, an ``(n, dimension)`` float32
array out, one row per text, in order; batches of at most ``batch_size`` change nothing; with
``normalize`` the rows have unit length; ``embed`` and ``embed_one`` are the same vectors from async
code; ``name`` is ``provider:model``. The suite adds what any index built on an embedder relies on:
the same text gives the same vector, different texts give different ones, and failures are Podium's
:class:`~podium.models.ModelError`, not a raw HTTP or parsing exception.

To run a new embedder against it, add a case to ``CASES`` and to the ``case`` fixture.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from conformance_helpers import closed_port, json_answer

from podium.embeddings import Embedder, get_embedder, l2_normalize
from podium.models import ModelError, ModelNotAvailable

TEXTS = [
    "refund my order",
    "reset my password",
    "the parcel arrived damaged",
    "Where is my order 42?",
    "Bonjour, je voudrais changer mon adresse de livraison.",
]


@dataclass
class Case:
    kind: str
    make: Callable[..., Embedder]
    """Makes the embedder, with options (``normalize=``, ``base_url=``...)."""
    declares_dimension: bool = True
    """Knows its dimension before the first call (remote embedders learn it from the first answer)."""
    remote: bool = False
    """Calls a server over HTTP (``base_url=``)."""
    tolerance: float = 1e-5
    """How close two computations of one vector must be (batched inference pads and reorders work)."""


def _local() -> Case:
    def make(**options: Any) -> Embedder:
        return get_embedder("local:all-minilm-l6-v2", **options)

    try:
        make().encode(["warm up"])
    except ModelNotAvailable as exc:
        pytest.skip(f"local embeddings are not installed here: {exc}")
    return Case("local", make, tolerance=1e-4)


CASES = ["hash", "local", "remote"]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    if request.param == "hash":
        yield Case("hash", lambda **o: get_embedder("hash:256", **o))
    elif request.param == "local":
        yield _local()
    else:
        url = request.getfixturevalue("llama_embedding_server")
        yield Case(
            "remote",
            lambda **o: get_embedder("llamacpp:smollm2", **{"base_url": url, **o}),
            declares_dimension=False,
            remote=True,
            tolerance=1e-3,
        )


def cos(a: Any, b: Any) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def assert_same_rows(a: Any, b: Any, case: Case) -> None:
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=case.tolerance, rtol=0)


# --- identity and shape ------------------------------------------------------------------------------


def test_identity(case: Case):
    e = case.make()
    assert isinstance(e, Embedder)
    provider, sep, model = e.name.partition(":")
    assert sep and provider and model, f"name {e.name!r} is not provider:model"
    assert isinstance(e.normalize, bool) and e.normalize is True  # the default
    assert isinstance(e.batch_size, int) and e.batch_size > 0
    assert e.name in repr(e)
    if case.declares_dimension:
        assert e.dimension > 0


def test_shape_dtype_and_dimension(case: Case):
    e = case.make()
    declared = e.dimension
    out = e.encode(TEXTS[:3])
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert out.ndim == 2 and out.shape[0] == 3 and out.shape[1] > 0
    assert out.shape[1] == e.dimension
    if case.declares_dimension:
        assert e.dimension == declared
    assert np.isfinite(out).all()
    again = e.encode(TEXTS)
    assert again.shape == (len(TEXTS), e.dimension)  # stable across calls


async def test_embed_and_embed_one_are_encode(case: Case):
    e = case.make()
    sync = e.encode(TEXTS[:3])
    out = await e.embed(TEXTS[:3])
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert_same_rows(out, sync, case)
    one = await e.embed_one(TEXTS[1])
    assert one.shape == (e.dimension,) and one.dtype == np.float32
    np.testing.assert_allclose(one, sync[1], atol=case.tolerance, rtol=0)
    out_tuple = await e.embed(tuple(TEXTS[:3]))  # any sequence of texts
    assert_same_rows(out_tuple, sync, case)


# --- batches, order, determinism -----------------------------------------------------------------------


def test_batch_equals_one_by_one(case: Case):
    e = case.make()
    batch = e.encode(TEXTS)
    alone = np.stack([e.encode([t])[0] for t in TEXTS])
    assert_same_rows(batch, alone, case)


def test_small_batches_keep_order(case: Case):
    whole = case.make().encode(TEXTS)
    e = case.make()
    e.batch_size = 2  # 5 texts: batches of 2, 2 and 1
    assert_same_rows(e.encode(TEXTS), whole, case)
    reversed_rows = e.encode(TEXTS[::-1])
    assert_same_rows(reversed_rows[::-1], whole, case)


def test_deterministic(case: Case):
    e = case.make()
    first = e.encode([TEXTS[0], TEXTS[2], TEXTS[0]])
    np.testing.assert_allclose(first[0], first[2], atol=case.tolerance, rtol=0)
    second = case.make().encode([TEXTS[0]])  # another instance, same model
    np.testing.assert_allclose(second[0], first[0], atol=case.tolerance, rtol=0)


def test_different_texts_give_different_vectors(case: Case):
    out = case.make().encode(TEXTS)
    for i in range(len(TEXTS)):
        for j in range(i + 1, len(TEXTS)):
            assert cos(out[i], out[j]) < 0.995, (TEXTS[i], TEXTS[j])


def test_rows_are_unit_length_when_normalized(case: Case):
    e = case.make()
    assert e.normalize
    norms = np.linalg.norm(e.encode(TEXTS), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-4)


def test_normalize_false_changes_only_the_length(case: Case):
    raw = case.make(normalize=False)
    assert raw.normalize is False
    unnormalized = raw.encode(TEXTS)
    assert unnormalized.dtype == np.float32 and np.isfinite(unnormalized).all()
    assert (np.linalg.norm(unnormalized, axis=1) > 0).all()
    assert_same_rows(l2_normalize(unnormalized), case.make().encode(TEXTS), case)


# --- empty input -------------------------------------------------------------------------------------


def test_no_texts_give_no_rows(case: Case):
    e = case.make()
    before = e.encode([])
    assert isinstance(before, np.ndarray) and before.dtype == np.float32
    assert before.shape == (0, e.dimension)
    e.encode(TEXTS[:1])
    after = e.encode([])
    assert after.shape == (0, e.dimension) and e.dimension > 0


def test_empty_text_is_a_row_or_a_podium_error(case: Case):
    """An empty string: a finite row of the right size, or (a server that refuses it) a ModelError."""
    e = case.make()
    e.encode(TEXTS[:1])
    try:
        out = e.encode(["", TEXTS[1]])
    except ModelError:
        assert case.remote, "only a server may refuse an empty text"
        return
    assert out.shape == (2, e.dimension) and np.isfinite(out).all()
    np.testing.assert_allclose(out[1], e.encode([TEXTS[1]])[0], atol=case.tolerance, rtol=0)


async def test_concurrent_embeds(case: Case):
    e = case.make()
    alone = [e.encode([t]) for t in TEXTS]
    together = await asyncio.wait_for(asyncio.gather(*(e.embed([t]) for t in TEXTS)), timeout=240)
    for a, b in zip(together, alone, strict=True):
        assert_same_rows(a, b, case)


# --- failures of remote embedders ----------------------------------------------------------------------


def _remote(case: Case) -> None:
    if not case.remote:
        pytest.skip(f"the {case.kind} embedder calls no server")


def test_unreachable_server_is_a_model_error(case: Case):
    _remote(case)
    e = case.make(base_url=f"http://127.0.0.1:{closed_port()}/v1")
    with pytest.raises(ModelError, match="127.0.0.1"):
        e.encode(TEXTS[:2])


def _embeddings(vectors: list[list[float]], order: list[int]) -> dict[str, Any]:
    return {"object": "list", "data": [{"index": i, "embedding": vectors[i]} for i in order]}


BAD_ANSWERS: dict[str, Callable[[], tuple[int, dict[str, str], bytes]]] = {
    "http 500": lambda: json_answer(500, {"error": {"message": "llama_decode returned -1"}}),
    "http 429": lambda: json_answer(429, {"error": {"message": "slow down"}}, **{"retry-after": "1"}),
    "not json": lambda: (200, {"content-type": "text/html"}, b"<html>proxy</html>"),
    "no data": lambda: json_answer(200, {"object": "list"}),
    "rows missing": lambda: json_answer(200, _embeddings([[1.0, 0.0]], [0])),
    "ragged rows": lambda: json_answer(200, _embeddings([[1.0, 0.0], [1.0]], [0, 1])),
}


@pytest.mark.parametrize("answer", list(BAD_ANSWERS))
def test_bad_answers_are_model_errors(case: Case, http_server, answer):
    """Whatever a server answers, the caller sees a ModelError, never a raw or silently wrong result."""
    _remote(case)
    server = http_server(lambda *_: BAD_ANSWERS[answer]())
    e = case.make(base_url=server.url + "/v1")
    with pytest.raises(ModelError):
        e.encode(["one", "two"])


def test_rows_follow_the_index_field(case: Case, http_server):
    """Servers may answer rows out of order: each row goes where its ``index`` says."""
    _remote(case)
    vectors = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]]
    server = http_server(lambda *_: json_answer(200, _embeddings(vectors, [2, 0, 1])))
    e = case.make(base_url=server.url + "/v1")
    out = e.encode(["a", "b", "c"])
    np.testing.assert_allclose(out, np.eye(3, dtype=np.float32))
    sent = json.loads(server.requests[0][3])
    assert sent["input"] == ["a", "b", "c"] and sent["model"]
    assert server.requests[0][1] == "/v1/embeddings"
