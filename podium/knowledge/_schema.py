"""The knowledge component's tables: bases, documents, chunks, and a keyword index per dialect
(SQLite FTS5 with the porter stemmer; a PostgreSQL ``tsvector`` column with a GIN index)."""

from __future__ import annotations

_TABLES = """
CREATE TABLE kb_bases (
    name {id} PRIMARY KEY,
    embedder TEXT NOT NULL,
    created_at {real} NOT NULL
);
CREATE TABLE kb_documents (
    kb {id} NOT NULL,
    source {id} NOT NULL,
    content_hash TEXT NOT NULL,
    title TEXT,
    type TEXT,
    metadata {json},
    chunks INTEGER NOT NULL,
    updated_at {real} NOT NULL,
    PRIMARY KEY (kb, source)
);
CREATE INDEX kb_documents_hash ON kb_documents (kb, content_hash);
CREATE TABLE kb_chunks (
    id {id} PRIMARY KEY,
    kb {id} NOT NULL,
    source {id} NOT NULL,
    seq INTEGER NOT NULL,
    text TEXT NOT NULL,
    metadata {json}
);
CREATE INDEX kb_chunks_doc ON kb_chunks (kb, source);
"""

MIGRATIONS: dict[str, list[tuple[int, str]]] = {
    "sqlite": [
        (
            1,
            _TABLES + "CREATE VIRTUAL TABLE kb_fts USING fts5(text, chunk_id UNINDEXED, kb UNINDEXED, "
            "tokenize='porter unicode61')",
        )
    ],
    "postgres": [
        (
            1,
            _TABLES + "ALTER TABLE kb_chunks ADD COLUMN tsv tsvector "
            "GENERATED ALWAYS AS (to_tsvector('english', text)) STORED; "
            "CREATE INDEX kb_chunks_tsv ON kb_chunks USING GIN (tsv)",
        )
    ],
}
