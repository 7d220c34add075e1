"""The memory component's tables (entity memory, graph, run state, erasures), versioned."""

from __future__ import annotations

#: Versioned migrations of the ``memory`` component; never edit a released one, add a new one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE mem_items (
            id {id} PRIMARY KEY,
            entity {id} NOT NULL,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            data {json},
            metadata {json},
            created_at {real} NOT NULL,
            expires_at {real},
            run_id TEXT,
            step TEXT
        );
        CREATE INDEX mem_items_entity ON mem_items (entity, created_at);
        CREATE INDEX mem_items_kind ON mem_items (kind, created_at);
        CREATE TABLE mem_entities (
            id {id} PRIMARY KEY,
            type TEXT NOT NULL,
            properties {json},
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL
        );
        CREATE INDEX mem_entities_type ON mem_entities (type);
        CREATE TABLE mem_relations (
            src {id} NOT NULL,
            relation TEXT NOT NULL,
            dst {id} NOT NULL,
            properties {json},
            created_at {real} NOT NULL,
            PRIMARY KEY (src, relation, dst)
        );
        CREATE INDEX mem_relations_dst ON mem_relations (dst, relation);
        CREATE TABLE mem_run_state (
            run_id {id} NOT NULL,
            key TEXT NOT NULL,
            value TEXT,
            updated_at {real} NOT NULL,
            PRIMARY KEY (run_id, key)
        );
        CREATE TABLE mem_erasures (
            id {bigint} PRIMARY KEY,
            entity_sha256 TEXT NOT NULL,
            at {real} NOT NULL,
            counts {json} NOT NULL,
            reason TEXT
        )
        """,
    )
]
