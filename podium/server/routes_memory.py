"""Memory and knowledge over HTTP: entity memory (recall, remember), the entity graph (an entity,
its relations, multi-hop queries) and knowledge bases (list, search with citations, add a document).

Everything goes through the memory beside the server's run store (``podium.memory.memory_for``), the
same one workflow steps use. Reads need ``memory.read``; writes need ``memory.write`` and are audited.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..governance.identity import Principal
from .auth import acting
from .errors import ApiError
from .openapi import documented

router = APIRouter(prefix="/api")

ENTITY = Path(description="An entity id, `type:key` (e.g. `customer:42`).", min_length=1, max_length=500)
KB_NAME = Path(description="A knowledge base name.", min_length=1, max_length=200, pattern=r"^[\w.-]+$")


def _memory(request: Request) -> Any:
    from ..memory import memory_for

    return memory_for(request.app.state.client)


async def _allow(request: Request, permission: str, target: str) -> None:
    await request.app.state.client.authorize(permission, target)


def embedder_on(request: Request, embedder: Any, what: str) -> None:
    """Refuse (409) to embed with a provider that a kill switch stopped: outside a run no workflow's
    policy applies, but a switch on a provider (or on everything) stops every call to it."""
    from ..governance.enforcement import embedding_switched_off

    off = embedding_switched_off(request.app.state.client.governance, embedder, what)
    if off is not None:
        raise ApiError(409, "kill_switch_active", off)


def entity_target(entity: str) -> str:
    """How the audit log names an entity: by the SHA-256 digest of its id, as ``podium memory
    forget`` does. An id may name a person (``person:ann@example.com``), and the audit log is never
    erased."""
    import hashlib

    return f"entity-sha256:{hashlib.sha256(entity.encode()).hexdigest()}"


def json_object(text: str | None, name: str) -> dict[str, Any] | None:
    """A JSON object passed in a query parameter (``where={"channel": "email"}``)."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ApiError(
            422,
            "invalid_request",
            f'query parameter {name!r} must be a JSON object, e.g. {name}={{"channel": "email"}}; got {text[:80]!r}',
        )
    return value


def csv(text: str | None) -> list[str] | None:
    """``a,b`` -> ``["a", "b"]`` (None when empty)."""
    items = [p.strip() for p in (text or "").split(",") if p.strip()]
    return items or None


def _plain(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


# -- answers (described in the OpenAPI document; the JSON is podium.memory's records as dicts) ------


class MemoryItem(BaseModel):
    id: str
    entity: str
    kind: str
    text: str
    data: Any = None
    metadata: dict[str, Any]
    created_at: float
    expires_at: float | None = None
    run_id: str | None = None
    step: str | None = None
    score: float | None = Field(default=None, description="Similarity to the query (recall with `query`).")


class Recalled(BaseModel):
    entity: str
    items: list[MemoryItem]


class Remembered(BaseModel):
    item: MemoryItem


class Entity(BaseModel):
    id: str
    type: str
    properties: dict[str, Any]
    created_at: float
    updated_at: float


class Relation(BaseModel):
    src: str
    relation: str
    dst: str
    properties: dict[str, Any]
    created_at: float


class EntityView(BaseModel):
    entity: Entity
    relations: list[Relation]


class Reached(BaseModel):
    entity: Entity
    hops: int
    path: list[Relation] = Field(description="The edges that reached it, from the start.")


class Neighbors(BaseModel):
    start: str
    reached: list[Reached]


class Related(BaseModel):
    relation: Relation


class EntityList(BaseModel):
    entities: list[Entity]


class KnowledgeDocument(BaseModel):
    source: str
    title: str | None = None
    type: str | None = None
    chunks: int
    updated_at: float


class KnowledgeDocumentList(BaseModel):
    kb: str
    documents: list[KnowledgeDocument]


class KnowledgeBase(BaseModel):
    name: str
    embedder: str
    documents: int
    chunks: int


class KnowledgeBaseList(BaseModel):
    knowledge_bases: list[KnowledgeBase]


class Passage(BaseModel):
    id: str
    text: str
    score: float
    source: str
    title: str
    page: int | None = None
    heading: str | None = None
    metadata: dict[str, Any]
    citation: str = Field(description="`title, p. 3` or `title § heading`.")
    ref: str = Field(description="`[n]`, as numbered in `context`.")


class SearchResult(BaseModel):
    kb: str
    query: str
    passages: list[Passage]
    context: str = Field(description="The passages numbered [1]... with their citations, for a prompt.")
    citations: list[str]


class IngestReport(BaseModel):
    added: int
    updated: int
    unchanged: int
    duplicates: list[list[str]] = Field(description="[source, the source it duplicates] pairs.")
    chunks_embedded: int
    chunks_removed: int
    seconds: float


class DocumentAdded(BaseModel):
    kb: str
    report: IngestReport


# -- entity memory ---------------------------------------------------------------------------------


class Remember(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped field (metdata) is named, not dropped

    text: str = Field(min_length=1, max_length=100_000, description="What to remember, in words (embedded).")
    kind: str = Field(default="fact", min_length=1, max_length=100, description="fact, event, summary...")
    data: Any = Field(default=None, description="Optional structured payload (JSON).")
    metadata: dict[str, Any] = Field(default_factory=dict, description="Filterable fields.")
    ttl: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, description="Seconds until it expires."
    )


@router.get(
    "/memory/{entity}",
    tags=["memory"],
    **documented("recallMemory", Recalled, 422),
    summary="Recall what is remembered about an entity",
)
async def recall(
    request: Request,
    entity: str = ENTITY,
    query: str | None = Query(
        default=None, max_length=10_000, description="Rank by similarity to this text."
    ),
    kind: str | None = Query(default=None, description="Comma-separated kinds, e.g. fact,event"),
    limit: int = Query(default=20, ge=1, le=1000),
    since: float | None = Query(
        default=None, allow_inf_nan=False, description="Created at or after (epoch s)."
    ),
    until: float | None = Query(
        default=None, allow_inf_nan=False, description="Created at or before (epoch s)."
    ),
    where: str | None = Query(default=None, description='Metadata filter as JSON, e.g. {"channel": "email"}'),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """Newest first; with `query`, the most similar first (each item has a `score`)."""
    await _allow(request, "memory.read", entity_target(entity))
    filters = json_object(where, "where")
    if query is not None and query.strip():
        embedder_on(request, _memory(request).embedder, "recall with a query")
    items = await _memory(request).recall(
        entity, query, kind=csv(kind), k=limit, since=since, until=until, where=filters
    )
    return {"entity": entity, "items": [_plain(i) for i in items]}


@router.post(
    "/memory/{entity}",
    tags=["memory"],
    **documented("rememberMemory", Remembered, 422, status=201),
    summary="Remember something about an entity",
)
async def remember(
    body: Remember, request: Request, entity: str = ENTITY, who: Principal = Depends(acting)
) -> dict[str, Any]:
    client = request.app.state.client
    await _allow(request, "memory.write", entity_target(entity))
    embedder_on(request, _memory(request).embedder, "remember")
    item = await _memory(request).remember(
        entity, body.text, kind=body.kind, data=body.data, metadata=body.metadata, ttl=body.ttl
    )
    await client.record_audit("memory.remember", entity_target(entity), item=item.id, kind=item.kind)
    return {"item": _plain(item)}


# -- entity graph ----------------------------------------------------------------------------------


class Relate(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped field (metdata) is named, not dropped

    src: str = Field(min_length=1, max_length=500, description="The source entity (`ticket:T1`).")
    relation: str = Field(min_length=1, max_length=200, description="The relation (`affects`).")
    dst: str = Field(min_length=1, max_length=500, description="The target entity (`renewal:R9`).")
    properties: dict[str, Any] = Field(default_factory=dict)


@router.get(
    "/graph",
    tags=["memory"],
    **documented("searchEntities", EntityList, 422),
    summary="Find entities by id text and type",
)
async def find_entities(
    request: Request,
    search: str | None = Query(
        default=None, max_length=500, description="Text the id contains (any case), e.g. `acme`."
    ),
    type: str | None = Query(default=None, max_length=200, description="Only entities of this type."),
    where: str | None = Query(default=None, description='Property filter as JSON, e.g. {"status": "open"}'),
    limit: int = Query(default=50, ge=1, le=500),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """Ids starting with `search` come first, then the others that contain it, each group by id."""
    await _allow(request, "memory.read", "entity:*")
    found = await _memory(request).find_entities(
        type=type or None, where=json_object(where, "where"), limit=limit, search=search or None
    )
    return {"entities": [_plain(e) for e in found]}


@router.get(
    "/graph/{entity}",
    tags=["memory"],
    **documented("getEntity", EntityView, 404, 422),
    summary="An entity's properties and relations",
)
async def entity(
    request: Request,
    entity: str = ENTITY,
    direction: Literal["out", "in", "both"] = "both",
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    await _allow(request, "memory.read", entity_target(entity))
    mem = _memory(request)
    node = await mem.get_entity(entity)
    if node is None:
        raise ApiError(
            404,
            "not_found",
            f"no entity {entity!r} in the graph; steps create entities with memory.of(ctx).relate(...) "
            "or remember(...), or POST /api/graph/relations",
        )
    rels = await mem.relations(entity, direction=direction)
    return {"entity": _plain(node), "relations": [_plain(r) for r in rels]}


@router.get(
    "/graph/{entity}/neighbors",
    tags=["memory"],
    **documented("listNeighbors", Neighbors, 422),
    summary="Entities within N hops, or along a path",
)
async def neighbors(
    request: Request,
    entity: str = ENTITY,
    hops: int = Query(default=1, ge=1, le=6, description="How many edges away (breadth-first)."),
    relations: str | None = Query(default=None, description="Follow only these relations (comma-separated)."),
    direction: Literal["out", "in", "both"] = "both",
    path: str | None = Query(
        default=None,
        description="A relation path instead of hops, comma-separated; `<rel` follows an edge backwards "
        "(e.g. `<supplied_by,<contains`).",
    ),
    type: str | None = Query(default=None, description="Only entities of these types (comma-separated)."),
    where: str | None = Query(default=None, description='Property filter as JSON, e.g. {"status": "open"}'),
    limit: int = Query(default=100, ge=1, le=1000),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """Each result has the entity, `hops` and the `path` of edges that reached it."""
    await _allow(request, "memory.read", entity_target(entity))
    mem = _memory(request)
    filters = json_object(where, "where")
    types = csv(type)
    steps = csv(path)
    if steps:
        if any(not s.lstrip("<") for s in steps):
            raise ApiError(
                422,
                "invalid_request",
                f"path {path!r}: every step names a relation, e.g. <supplied_by,<contains",
            )
        found = await mem.follow(entity, *steps, type=types, where=filters, limit=limit)
    else:
        found = await mem.neighbors(
            entity,
            hops=hops,
            relations=csv(relations),
            direction=direction,
            type=types,
            where=filters,
            limit=limit,
        )
    return {"start": entity, "reached": [_plain(r) for r in found]}


@router.post(
    "/graph/relations",
    tags=["memory"],
    **documented("relateEntities", Related, 422, status=201),
    summary="Relate two entities",
)
async def relate(body: Relate, request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    """Upserts the edge `src -relation-> dst`; unknown entities are created."""
    client = request.app.state.client
    await _allow(request, "memory.write", entity_target(body.src))
    rel = await _memory(request).relate(body.src, body.relation, body.dst, body.properties)
    await client.record_audit(
        "memory.relate", entity_target(body.src), relation=body.relation, dst=entity_target(body.dst)
    )
    return {"relation": _plain(rel)}


# -- knowledge bases -------------------------------------------------------------------------------


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a mistyped field (metdata) is named, not dropped

    source: str = Field(
        min_length=1,
        max_length=1000,
        description="Where it comes from (its key: the same source again updates it).",
    )
    text: str = Field(min_length=1, max_length=5_000_000)
    type: Literal["text", "markdown", "html"] = "text"
    title: str | None = Field(default=None, max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict, description="Added to every chunk (filterable).")


async def _bases(request: Request) -> list[dict[str, Any]]:
    from ..knowledge import knowledge_bases

    bases: list[dict[str, Any]] = await knowledge_bases(_memory(request))
    return bases


@router.get(
    "/kb",
    tags=["knowledge"],
    **documented("listKnowledgeBases", KnowledgeBaseList),
    summary="Knowledge bases: documents, chunks and embedder",
)
async def list_kbs(request: Request, who: Principal = Depends(acting)) -> dict[str, Any]:
    await _allow(request, "memory.read", "kb:*")
    return {"knowledge_bases": await _bases(request)}


@router.get(
    "/kb/{name}/documents",
    tags=["knowledge"],
    **documented("listDocuments", KnowledgeDocumentList, 404, 422),
    summary="The documents of a knowledge base",
)
async def list_documents(request: Request, name: str = KB_NAME, who: Principal = Depends(acting)) -> dict[str, Any]:
    """Each document's source, title, type, chunk count and when it was last ingested."""
    from ..knowledge import knowledge_base

    await _allow(request, "memory.read", f"kb:{name}")
    await _existing(request, name)
    return {"kb": name, "documents": await knowledge_base(_memory(request), name).documents()}


@router.get(
    "/kb/{name}/search",
    tags=["knowledge"],
    **documented("searchKnowledgeBase", SearchResult, 404, 422),
    summary="Retrieve passages with citations",
)
async def search(
    request: Request,
    name: str = KB_NAME,
    query: str = Query(min_length=1, max_length=10_000, description="What to look for."),
    k: int = Query(default=5, ge=1, le=100),
    where: str | None = Query(
        default=None, description='Chunk metadata filter as JSON, e.g. {"type": "markdown"}'
    ),
    hybrid: bool = Query(default=True, description="Fuse keyword (BM25) and vector rankings."),
    who: Principal = Depends(acting),
) -> dict[str, Any]:
    """Returns `passages` (text, score, source, title, page, heading, metadata, citation, ref `[n]`),
    `context` (numbered passages for a prompt) and `citations` (the numbered source list)."""
    from ..knowledge import knowledge_base, retrieve

    await _allow(request, "memory.read", f"kb:{name}")
    filters = json_object(where, "where")
    await _existing(request, name)
    base = await knowledge_base(_memory(request), name).open()
    embedder_on(request, base.embedder, f"searching knowledge base {name!r}")
    result: dict[str, Any] = await retrieve(
        None, name, query, k=k, where=filters, hybrid=hybrid, memory=_memory(request)
    )
    return {"kb": name, "query": query, **result}


@router.post(
    "/kb/{name}/documents",
    tags=["knowledge"],
    **documented("addDocument", DocumentAdded, 422, status=201),
    summary="Add or update a document",
)
async def add_document(
    body: Document, request: Request, name: str = KB_NAME, who: Principal = Depends(acting)
) -> dict[str, Any]:
    """Chunks, embeds and stores a text document (created on first use; an unchanged document is
    skipped). Files and folders are ingested with `podium kb ingest`."""
    from ..knowledge import from_text, knowledge_base

    client = request.app.state.client
    await _allow(request, "memory.write", f"kb:{name}")
    doc = from_text(body.text, source=body.source, type=body.type, title=body.title)
    base = await knowledge_base(_memory(request), name).open()
    embedder_on(request, base.embedder, f"adding a document to knowledge base {name!r}")
    report = await base.ingest([doc], metadata=body.metadata)
    await client.record_audit("kb.ingest", f"kb:{name}", source=body.source)
    out = dataclasses.asdict(report)
    out["duplicates"] = [list(d) for d in report.duplicates]
    return {"kb": name, "report": out}


async def _existing(request: Request, name: str) -> None:
    """Searching must not create a base (opening an unknown one does): 404 instead."""
    names = [b["name"] for b in await _bases(request)]
    if name not in names:
        raise ApiError(
            404,
            "not_found",
            f"no knowledge base {name!r}; there are: {', '.join(names) or 'none'}. Create it with "
            f"'podium kb ingest PATH --kb {name}' or POST /api/kb/{name}/documents",
        )
