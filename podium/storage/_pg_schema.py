"""The PostgreSQL store's tables: versioned migrations, applied in order by
:meth:`podium.storage.postgres.PostgresStore.open`."""

from __future__ import annotations

#: Versioned schema migrations, applied in order; never edit a released one, add a new one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE runs (
            id TEXT COLLATE "C" PRIMARY KEY,
            workflow TEXT NOT NULL,
            version TEXT NOT NULL,
            status TEXT NOT NULL,
            input TEXT,
            output TEXT,
            error TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            started_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            parent_run_id TEXT COLLATE "C",
            parent_step TEXT,
            forked_from TEXT COLLATE "C",
            fork_step TEXT,
            workflow_ref TEXT,
            owner TEXT COLLATE "C",
            lease_expires_at DOUBLE PRECISION,
            cancel_requested BOOLEAN NOT NULL DEFAULT FALSE
        );
        CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
        CREATE INDEX runs_workflow ON runs (workflow, created_at DESC);
        CREATE INDEX runs_status ON runs (status);
        CREATE INDEX runs_parent ON runs (parent_run_id);
        CREATE TABLE events (
            run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq BIGINT NOT NULL,
            type TEXT NOT NULL,
            ts DOUBLE PRECISION NOT NULL,
            step TEXT,
            iteration INTEGER NOT NULL DEFAULT 0,
            idx INTEGER,
            attempt INTEGER NOT NULL DEFAULT 0,
            data TEXT,
            PRIMARY KEY (run_id, seq)
        );
        """,
    ),
    (
        2,
        """
        ALTER TABLE runs ADD COLUMN wake_at DOUBLE PRECISION;
        ALTER TABLE runs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN tenant TEXT;
        ALTER TABLE runs ADD COLUMN labels TEXT;
        CREATE INDEX runs_ready ON runs (status, queue, priority DESC, created_at);
        CREATE INDEX runs_wake ON runs (wake_at) WHERE status = 'waiting';
        CREATE TABLE signals (
            run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            payload TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (run_id, name)
        );
        """,
    ),
    (
        3,
        """
        CREATE TABLE audit (
            seq BIGINT PRIMARY KEY,
            ts DOUBLE PRECISION NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            data TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TABLE kv (
            ns TEXT COLLATE "C" NOT NULL,
            key TEXT COLLATE "C" NOT NULL,
            value TEXT NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL DEFAULT extract(epoch from now()),
            PRIMARY KEY (ns, key)
        );
        """,
    ),
    (
        4,
        """
        -- the audit entries about one run, read when the run resumes (its latest checkpoint)
        CREATE INDEX audit_target ON audit (target, seq);
        """,
    ),
    (
        5,
        """
        -- list and filter many runs by status (and workflow), newest first, a page at a time
        DROP INDEX runs_status;
        CREATE INDEX runs_status ON runs (status, created_at DESC, id DESC);
        CREATE INDEX runs_workflow_status ON runs (workflow, status, created_at DESC, id DESC);
        -- claims find the few held, cancelled or due runs among many parked ones without a scan
        CREATE INDEX runs_owned ON runs (owner) WHERE owner IS NOT NULL;
        CREATE INDEX runs_cancel ON runs (status) WHERE cancel_requested;
        """,
    ),
    (
        6,
        """
        -- one audit chain per writer, anchored in the shared chain 'anchors' (storage/_audit.py);
        -- entries written before keep chain NULL: the legacy chain, ordered by seq
        ALTER TABLE audit ADD COLUMN chain TEXT COLLATE "C";
        ALTER TABLE audit ADD COLUMN cseq BIGINT;
        CREATE UNIQUE INDEX audit_chain ON audit (chain, cseq) WHERE chain IS NOT NULL;
        CREATE SEQUENCE audit_seq;
        SELECT setval('audit_seq', COALESCE((SELECT MAX(seq) FROM audit), 0) + 1, false);
        """,
    ),
]


#: The LISTEN/NOTIFY channel that tells workers new work may be ready.
