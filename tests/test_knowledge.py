"""Knowledge bases: loaders (txt, Markdown, HTML, PDF), chunking, ingest with dedup and incremental
re-ingest, retrieval with filters, hybrid ranking and citations, on every backend; retrieval quality
with MiniLM on the labelled set in tests/data/kb."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import pytest

from podium.knowledge import KnowledgeBase, chunk_text, format_context, load
from podium.memory import Memory

DATA = Path(__file__).parent / "data" / "kb"


def make_pdf(pages: list[str], title: str = "Test manual") -> bytes:
    """A minimal valid PDF with one line of Helvetica text per page (offsets computed here)."""
    n = len(pages)
    objs = {
        1: "<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{4 + 2 * i} 0 R' for i in range(n))}] /Count {n} >>",
        3: "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4 + 2 * n: f"<< /Title ({title}) >>",
    }
    for i, text in enumerate(pages):
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objs[4 + 2 * i] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>"
        )
        objs[5 + 2 * i] = f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream"
    out, offsets = b"%PDF-1.4\n", []
    for num in sorted(objs):
        offsets.append(len(out))
        out += f"{num} 0 obj\n{objs[num]}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R /Info {4 + 2 * n} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_loaders(tmp_path):
    md = load(DATA / "refunds.md")
    assert (md.type, md.title) == ("markdown", "Refunds and returns")
    html = load(DATA / "billing.html")
    assert (
        html.title == "Invoices and billing"
        and "trackPage" not in html.text
        and "color: red" not in html.text
    )
    assert "Charged twice?" in html.text and "duplicate charge" in html.text
    assert load(DATA / "warranty.txt").type == "text"
    pdf = tmp_path / "manual.pdf"
    pdf.write_bytes(make_pdf(["Torque settings for the M18 drill", "Battery storage below 25 degrees"]))
    doc = load(pdf)
    assert doc.type == "pdf" and doc.title == "Test manual"
    assert [(m["page"], "Torque" in t or "Battery" in t) for t, m in doc.sections] == [(1, True), (2, True)]
    with pytest.raises(ValueError, match="supported"):
        load(tmp_path / "data.xlsx")


def test_chunking_overlaps_at_boundaries():
    text = " ".join(f"Sentence number {i} is here." for i in range(200))
    chunks = chunk_text(text, size=300, overlap=60)
    assert all(len(c.text) <= 300 for c in chunks) and len(chunks) > 10
    for a, b in itertools.pairwise(chunks):
        assert b.start < a.end  # overlap
        assert a.text.endswith(".")  # cut at a sentence end
    assert " ".join(c.text for c in chunks).count("Sentence number 199") >= 1
    md = "# Guide\n\nintro\n\n## Install\n\n" + "pip install podium. " * 40
    heads = [c.heading for c in chunk_text(md, size=200, overlap=20)]
    assert heads[0] == "Guide" and heads[-1] == "Install"
    with pytest.raises(ValueError):
        chunk_text("x", size=10, overlap=10)


@pytest.fixture
async def mem(store_url):
    async with Memory(store_url, embedder="hash:256") as m:
        yield m


def test_comments_in_code_blocks_are_not_headings(tmp_path):
    md = (
        "# Install\n\nRun this:\n\n```bash\n# create the environment\npython3 -m venv .venv\n```\n\n"
        "More text about installing.\n\n~~~python\n# a comment\nx = 1\n~~~\n\n## Use\n\n" + "Use it well. " * 20
    )
    heads = {c.heading for c in chunk_text(md, size=40, overlap=5)}
    assert heads == {"Install", "Use"}, heads
    (tmp_path / "a.md").write_text("```sh\n# not a title\n```\n\n# Real title\n\ntext\n")
    assert load(tmp_path / "a.md").title == "Real title"


async def test_ingest_search_reingest_and_dedup(mem, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DATA, docs)
    (docs / "queries.json").unlink()
    (docs / "manual.pdf").write_bytes(make_pdf(["Torque settings for the drill", "Battery storage advice"]))
    kb = KnowledgeBase(mem, "handbook", chunk_size=300, overlap=50)
    report = await kb.ingest(docs, metadata={"lang": "en"})
    assert (report.added, report.updated, report.unchanged) == (13, 0, 0)
    first_chunks = report.chunks_embedded
    assert first_chunks > 13

    hits = await kb.search("charged twice duplicate charge", k=3)
    assert hits[0].source.endswith("billing.html") and hits[0].title == "Invoices and billing"
    assert hits[0].metadata["lang"] == "en" and hits[0].citation.startswith("Invoices and billing")
    pdf_hit = (await kb.search("battery storage", k=1, where={"type": "pdf"}))[0]
    assert pdf_hit.page == 2 and pdf_hit.citation == "Test manual, p. 2"
    assert all(p.source.endswith(".txt") for p in await kb.search("warranty", k=5, where={"type": "text"}))
    context = format_context(hits)
    assert context.startswith("[1] (Invoices and billing") and "[3]" in context

    again = await kb.ingest(docs, metadata={"lang": "en"})
    assert (again.added, again.updated, again.unchanged, again.chunks_embedded) == (0, 0, 13, 0)

    refunds = docs / "refunds.md"
    refunds.write_text(refunds.read_text().replace("30 days", "45 days"))
    (docs / "copy.md").write_text((docs / "shipping.md").read_text())
    changed = await kb.ingest(docs, metadata={"lang": "en"})
    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 12)
    assert changed.duplicates == [(str(docs / "copy.md"), str(docs / "shipping.md"))]
    assert 0 < changed.chunks_embedded < 4 and changed.chunks_removed == changed.chunks_embedded
    top = await kb.search("refund within 45 days", k=1)
    assert "45 days" in top[0].text

    assert await kb.remove(str(refunds))
    assert all(not p.source.endswith("refunds.md") for p in await kb.search("refund return", k=10))
    assert {d["source"] for d in await kb.documents()} == {str(p) for p in docs.iterdir()} - {
        str(refunds),
        str(docs / "copy.md"),
    }


async def test_hybrid_finds_exact_terms(mem):
    from podium.knowledge import Document

    kb = KnowledgeBase(mem, "codes", chunk_size=200, overlap=20)
    docs = [
        Document(
            source=f"doc{i}",
            title=f"doc {i}",
            type="text",
            sections=[(f"Error code E{i:04d} means part {i} failed.", {})],
        )
        for i in range(30)
    ]
    await kb.ingest(docs)
    hits = await kb.search("what does E0017 mean", k=3, hybrid=True)
    assert hits[0].source == "doc17"
    assert hits == sorted(hits, key=lambda p: -p.score)
    only = await kb.search("E0017", k=3, hybrid=True, where={"source": "doc3"})
    assert [p.source for p in only] == ["doc3"]


async def test_embedder_is_fixed_per_base(store_url):
    async with Memory(store_url, embedder="hash:256") as mem:
        await KnowledgeBase(mem, "k").ingest(DATA / "warranty.txt")
        from podium import ConfigError

        with pytest.raises(ConfigError, match="built with embedder"):
            await KnowledgeBase(mem, "k", embedder="hash:64").open()


@pytest.mark.parametrize("hybrid", [False, True])
async def test_retrieval_quality_with_minilm(hybrid):
    """recall@5 on the labelled set (30 questions over 12 documents) with the real local model."""
    pytest.importorskip("onnxruntime")
    queries = json.loads((DATA / "queries.json").read_text())
    async with Memory("memory://", embedder="local:all-minilm-l6-v2") as mem:
        kb = KnowledgeBase(mem, "quality", chunk_size=300, overlap=60)
        await kb.ingest([p for p in sorted(DATA.iterdir()) if p.suffix != ".json"])
        found = 0
        for q in queries:
            top = [Path(p.source).name for p in await kb.search(q["query"], k=5, hybrid=hybrid)]
            found += q["source"] in top
    assert found / len(queries) >= 0.9


async def test_openai_compatible_embedder_plugs_into_memory():
    """openai:/ollama: embedders speak /v1/embeddings; a mock server answers with hashed vectors."""
    import httpx

    from podium.embeddings import get_embedder
    from podium.embeddings.hashing import HashEmbedder

    seen: list[dict] = []
    ref = HashEmbedder(64)

    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append({"url": str(request.url), "auth": request.headers.get("authorization"), **body})
        vecs = ref.encode(body["input"]).tolist()
        return httpx.Response(
            200, json={"data": [{"index": i, "embedding": v} for i, v in reversed(list(enumerate(vecs)))]}
        )

    emb = get_embedder("ollama:nomic-embed-text", transport=httpx.MockTransport(answer))
    assert emb.name == "ollama:nomic-embed-text"
    out = await emb.embed(["refund my order", "reset my password"])
    assert out.shape == (2, 64) and abs(float(out[0] @ ref.encode(["refund my order"])[0]) - 1) < 1e-5
    assert seen[0]["url"] == "http://127.0.0.1:11434/v1/embeddings" and seen[0]["model"] == "nomic-embed-text"
    oa = get_embedder("openai:text-embedding-3-small", api_key="k", base_url="http://127.0.0.1:9/v1",
                      transport=httpx.MockTransport(answer))  # fmt: skip
    async with Memory("memory://", embedder=oa) as mem:
        await mem.remember("customer:1", "wants a refund for order 7")
        await mem.remember("customer:1", "changed the delivery address")
        assert (await mem.recall("customer:1", "refund order", k=1))[0].text == "wants a refund for order 7"
        assert mem.collection == "memory@openai:text-embedding-3-small"
    assert seen[-1]["auth"] == "Bearer k"


async def test_forget_redacts_knowledge_chunks(mem):
    from podium.knowledge import Document

    kb = KnowledgeBase(mem, "crm", chunk_size=200, overlap=20)
    await kb.ingest([
        Document(source="notes", title="Notes", type="text", sections=[("Ann Lee (ann@example.com) renews in May.", {})]),
        Document(source="other", title="Other", type="text", sections=[("Bo renews in June.", {})]),
    ])  # fmt: skip
    await mem.upsert_entity("customer:42", properties={"name": "Ann Lee", "email": "ann@example.com"})
    erasure = await mem.forget("customer:42")
    assert erasure.counts["kb_chunks_redacted"] == 1
    [p] = await kb.search("who renews in May", k=1, where={"source": "notes"}, hybrid=True)
    assert p.text == "[redacted] ([redacted]) renews in May."
    assert (await kb.search("Bo renews", k=1))[0].text == "Bo renews in June."
