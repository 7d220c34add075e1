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
        -- the store's id, with its tables: no process sees a new store without it (storage/_identity.py)
        INSERT INTO kv (ns, key, value) VALUES ('podium.store', 'id', json_build_object(
            'id', md5(random()::text || clock_timestamp()::text || pg_backend_pid()::text), 'through', 0, 'state', 'ready'
        )::text);
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
    (
        7,
        """
        -- The approvals inbox: one row per open approval request (a run parked in ctx.approval()
        -- with no decision yet), read a page at a time from an index however many runs are parked.
        -- Triggers keep it in the transaction of the write that opens or closes a request, so
        -- every writer keeps it: a step's wait, a fork or a copied store (their events), a signal,
        -- a wait that timed out, a run's end; deleting a run deletes its rows.
        CREATE TABLE approvals (
            run_id TEXT COLLATE "C" NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT COLLATE "C" NOT NULL,
            seq BIGINT NOT NULL,
            workflow TEXT NOT NULL,
            requested_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (run_id, name)
        );
        CREATE INDEX approvals_inbox ON approvals (requested_at, run_id, name);
        CREATE INDEX approvals_workflow ON approvals (workflow, requested_at, run_id, name);
        -- the signal named by an event's data (that asks for approval if asked), or NULL
        CREATE FUNCTION podium_signal_of(data TEXT, asked BOOLEAN) RETURNS TEXT LANGUAGE plpgsql IMMUTABLE AS $$
        DECLARE d json;
        BEGIN
            d := data::json;
            IF json_typeof(d) = 'object' AND json_typeof(d->'signal') = 'string'
                AND (NOT asked OR coalesce(json_typeof(d->'approval'), 'null') <> 'null') THEN
                RETURN d->>'signal';
            END IF;
            RETURN NULL;
        EXCEPTION WHEN others THEN
            RETURN NULL;
        END $$;
        CREATE FUNCTION podium_approvals_open() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE asked TEXT := podium_signal_of(NEW.data, TRUE);
        BEGIN
            IF asked IS NOT NULL THEN
                INSERT INTO approvals (run_id, name, seq, workflow, requested_at)
                SELECT NEW.run_id, asked, NEW.seq, r.workflow, NEW.ts FROM runs r
                WHERE r.id = NEW.run_id AND r.status IN ('pending', 'running', 'waiting')
                    AND NOT EXISTS (SELECT 1 FROM signals s WHERE s.run_id = NEW.run_id AND s.name = asked)
                ON CONFLICT (run_id, name) DO NOTHING;
            END IF;
            RETURN NULL;
        END $$;
        CREATE FUNCTION podium_approvals_close() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_TABLE_NAME = 'signals' THEN
                DELETE FROM approvals WHERE run_id = NEW.run_id AND name = NEW.name;
            ELSIF TG_TABLE_NAME = 'runs' THEN
                DELETE FROM approvals WHERE run_id = NEW.id;
            ELSE  -- a signal wait completed (timed out): its event names the signal
                DELETE FROM approvals WHERE run_id = NEW.run_id AND name = podium_signal_of(NEW.data, FALSE);
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER approvals_open AFTER INSERT ON events FOR EACH ROW
            WHEN (NEW.type = 'step_waiting' AND strpos(NEW.data, '"approval"') > 0)
            EXECUTE FUNCTION podium_approvals_open();
        CREATE TRIGGER approvals_timed_out AFTER INSERT ON events FOR EACH ROW
            WHEN (NEW.type = 'step_completed' AND strpos(NEW.step, '/signal:') > 0)
            EXECUTE FUNCTION podium_approvals_close();
        CREATE TRIGGER approvals_decided AFTER INSERT ON signals FOR EACH ROW
            EXECUTE FUNCTION podium_approvals_close();
        CREATE TRIGGER approvals_ended AFTER UPDATE OF status ON runs FOR EACH ROW
            WHEN (NEW.status IN ('completed', 'failed', 'cancelled'))
            EXECUTE FUNCTION podium_approvals_close();
        -- the requests already open: asked by an unfinished run, not answered, not timed out
        INSERT INTO approvals (run_id, name, seq, workflow, requested_at)
        SELECT e.run_id, podium_signal_of(e.data, TRUE), e.seq, r.workflow, e.ts
        FROM runs r JOIN events e ON e.run_id = r.id
        WHERE r.status IN ('pending', 'running', 'waiting') AND e.type = 'step_waiting'
            AND strpos(e.data, '"approval"') > 0 AND podium_signal_of(e.data, TRUE) IS NOT NULL
            AND NOT EXISTS (
                SELECT 1 FROM signals s WHERE s.run_id = e.run_id AND s.name = podium_signal_of(e.data, TRUE)
            )
            AND NOT EXISTS (
                SELECT 1 FROM events c WHERE c.run_id = e.run_id AND c.seq > e.seq AND c.type = 'step_completed'
                    AND c.step = e.step AND c.iteration = e.iteration AND c.idx IS NOT DISTINCT FROM e.idx
            )
        ORDER BY e.run_id, e.seq
        ON CONFLICT (run_id, name) DO NOTHING;
        """,
    ),
    (
        8,
        """
        -- Every kill switch and policy the audit log ever set, by target, with its newest entry: an
        -- engine looks up each one in the log even when its row was deleted from the store
        -- (governance/backed.py). Partial: an insert of any other entry only tests its action.
        CREATE INDEX audit_governing ON audit (target, seq)
            WHERE action IN ('killswitch.set', 'killswitch.clear', 'policy.set');
        """,
    ),
    (
        9,
        """
        -- Child runs by parent, without the runs that have none: a root run's row wrote a NULL key
        -- to this index at its insert and again at every update that moved it (its claim, its end).
        -- Lists by parent (parent_run_id = ...) imply the condition and still read it.
        DROP INDEX runs_parent;
        CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
        """,
    ),
    (
        10,
        """
        -- The entries that made or changed a user (user.put, about 'user:NAME'): a server starting on
        -- a store without user rows asks whether it ever had users (server/auth.py had_users: users
        -- are disabled, never deleted), reading one entry of this index, not the whole log (_audit.USER_PUT).
        -- Partial: an insert of any other entry only tests its action.
        CREATE INDEX IF NOT EXISTS audit_user_put ON audit (seq) WHERE action = 'user.put';
        """,
    ),
]


#: The LISTEN/NOTIFY channel that tells workers new work may be ready.
