"""The SQLite store's tables: versioned migrations, applied in order by
:meth:`podium.storage.sqlite.SQLiteStore.open`."""

from __future__ import annotations

#: The runs the status indexes hold from schema 13 (every run but those an engine holds as pending or
#: running; those are in runs_owned): a query names it as it is to be served by them.
UNHELD = "(owner IS NULL OR status NOT IN ('pending', 'running'))"

#: Versioned schema migrations, applied in order; never edit a released one, add a new one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            workflow TEXT NOT NULL,
            version TEXT NOT NULL,
            status TEXT NOT NULL,
            input TEXT,
            output TEXT,
            error TEXT,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            parent_run_id TEXT,
            parent_step TEXT,
            forked_from TEXT,
            fork_step TEXT,
            workflow_ref TEXT,
            owner TEXT,
            lease_expires_at REAL,
            cancel_requested INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
        CREATE INDEX runs_workflow ON runs (workflow, created_at DESC);
        CREATE INDEX runs_status ON runs (status);
        CREATE INDEX runs_parent ON runs (parent_run_id);
        CREATE TABLE events (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            type TEXT NOT NULL,
            ts REAL NOT NULL,
            step TEXT,
            iteration INTEGER NOT NULL DEFAULT 0,
            idx INTEGER,
            attempt INTEGER NOT NULL DEFAULT 0,
            data TEXT,
            PRIMARY KEY (run_id, seq)
        ) WITHOUT ROWID;
        """,
    ),
    (
        2,
        """
        ALTER TABLE runs ADD COLUMN wake_at REAL;
        ALTER TABLE runs ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
        ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN tenant TEXT;
        ALTER TABLE runs ADD COLUMN labels TEXT;
        CREATE INDEX runs_ready ON runs (status, queue, priority DESC, created_at);
        CREATE INDEX runs_wake ON runs (wake_at) WHERE status = 'waiting';
        CREATE TABLE signals (
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            payload TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, name)
        ) WITHOUT ROWID;
        """,
    ),
    (
        3,
        """
        CREATE TABLE audit (
            seq INTEGER PRIMARY KEY,
            ts REAL NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT NOT NULL,
            data TEXT NOT NULL,
            prev_hash TEXT NOT NULL,
            hash TEXT NOT NULL
        );
        CREATE TABLE kv (
            ns TEXT NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (ns, key)
        ) WITHOUT ROWID;
        -- the store's id, with its tables: no process sees a new store without it (storage/_identity.py)
        INSERT INTO kv (ns, key, value, updated_at) VALUES ('podium.store', 'id',
            json_object('id', lower(hex(randomblob(16))), 'through', 0, 'state', 'ready'), strftime('%s','now'));
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
        CREATE INDEX runs_cancel ON runs (status) WHERE cancel_requested = 1;
        """,
    ),
    (
        6,
        """
        -- one audit chain per writer, anchored in the shared chain 'anchors' (storage/_audit.py);
        -- entries written before keep chain NULL: the legacy chain, ordered by seq
        ALTER TABLE audit ADD COLUMN chain TEXT;
        ALTER TABLE audit ADD COLUMN cseq INTEGER;
        CREATE UNIQUE INDEX audit_chain ON audit (chain, cseq) WHERE chain IS NOT NULL;
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
            run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            seq INTEGER NOT NULL,
            workflow TEXT NOT NULL,
            requested_at REAL NOT NULL,
            PRIMARY KEY (run_id, name)
        ) WITHOUT ROWID;
        CREATE INDEX approvals_inbox ON approvals (requested_at, run_id, name);
        CREATE INDEX approvals_workflow ON approvals (workflow, requested_at, run_id, name);
        CREATE TRIGGER approvals_open AFTER INSERT ON events
        WHEN NEW.type = 'step_waiting' AND instr(NEW.data, '"approval"') > 0 AND json_valid(NEW.data)
        BEGIN
            INSERT OR IGNORE INTO approvals (run_id, name, seq, workflow, requested_at)
            SELECT NEW.run_id, json_extract(NEW.data, '$.signal'), NEW.seq, r.workflow, NEW.ts FROM runs r
            WHERE r.id = NEW.run_id AND r.status IN ('pending', 'running', 'waiting')
                AND json_type(NEW.data, '$.signal') = 'text' AND json_type(NEW.data, '$.approval') <> 'null'
                AND NOT EXISTS (
                    SELECT 1 FROM signals s WHERE s.run_id = NEW.run_id AND s.name = json_extract(NEW.data, '$.signal')
                );
        END;
        CREATE TRIGGER approvals_timed_out AFTER INSERT ON events
        WHEN NEW.type = 'step_completed' AND instr(NEW.step, '/signal:') > 0 AND json_valid(NEW.data)
        BEGIN
            DELETE FROM approvals WHERE run_id = NEW.run_id AND name = json_extract(NEW.data, '$.signal');
        END;
        CREATE TRIGGER approvals_decided AFTER INSERT ON signals
        BEGIN
            DELETE FROM approvals WHERE run_id = NEW.run_id AND name = NEW.name;
        END;
        CREATE TRIGGER approvals_ended AFTER UPDATE OF status ON runs
        WHEN NEW.status IN ('completed', 'failed', 'cancelled')
        BEGIN
            DELETE FROM approvals WHERE run_id = NEW.id;
        END;
        -- the requests already open: asked by an unfinished run, not answered, not timed out
        INSERT OR IGNORE INTO approvals (run_id, name, seq, workflow, requested_at)
        SELECT e.run_id, json_extract(e.data, '$.signal'), e.seq, r.workflow, e.ts
        FROM runs r JOIN events e ON e.run_id = r.id
        WHERE r.status IN ('pending', 'running', 'waiting') AND e.type = 'step_waiting'
            AND instr(e.data, '"approval"') > 0 AND json_valid(e.data)
            AND json_type(e.data, '$.signal') = 'text' AND json_type(e.data, '$.approval') <> 'null'
            AND NOT EXISTS (
                SELECT 1 FROM signals s WHERE s.run_id = e.run_id AND s.name = json_extract(e.data, '$.signal')
            )
            AND NOT EXISTS (
                SELECT 1 FROM events c WHERE c.run_id = e.run_id AND c.seq > e.seq AND c.type = 'step_completed'
                    AND c.step = e.step AND c.iteration = e.iteration AND c.idx IS e.idx
            )
        ORDER BY e.run_id, e.seq;
        """,
    ),
    (
        8,
        """
        -- Fewer index pages written by each run's start and end (in WAL mode every dirty page costs
        -- writes at COMMIT). The lists read runs_status or runs_workflow_status, one range per status
        -- (storage/sqlite.py list_runs), and claims read runs_status, runs_wake and runs_cancel.
        DROP INDEX runs_created;
        DROP INDEX runs_workflow;
        DROP INDEX runs_ready;
        -- only child runs have a parent: top-level runs write no entry
        DROP INDEX runs_parent;
        CREATE INDEX runs_parent ON runs (parent_run_id, created_at DESC, id DESC)
            WHERE parent_run_id IS NOT NULL;
        """,
    ),
    (
        9,
        """
        -- The approvals inbox is kept by the store's own statements in the transaction that writes a
        -- request's event (storage/sqlite.py _keep_inbox), not by a trigger on every event: the two
        -- AFTER INSERT triggers cost every step's event ~1 us. Signals and run ends keep their
        -- triggers (they are not on a step's path).
        DROP TRIGGER approvals_open;
        DROP TRIGGER approvals_timed_out;
        """,
    ),
    (
        10,
        """
        -- A run that parks has its open requests listed again from its own events: a process of a
        -- release before schema 9 (still running during an upgrade) writes requests without the
        -- store's inbox statements, and its run parks right after asking. The partial index reaches
        -- a run's requests without reading its other events (an insert of any other event only
        -- tests its type), so parking costs the same for a run of ten events or of a million.
        CREATE INDEX events_waiting ON events (run_id, seq) WHERE type = 'step_waiting';
        CREATE TRIGGER approvals_parked AFTER UPDATE OF status ON runs
        WHEN NEW.status = 'waiting'
        BEGIN
            DELETE FROM approvals WHERE run_id = NEW.id;
            INSERT OR IGNORE INTO approvals (run_id, name, seq, workflow, requested_at)
            SELECT e.run_id, json_extract(e.data, '$.signal'), e.seq, NEW.workflow, e.ts
            FROM events e INDEXED BY events_waiting
            WHERE e.run_id = NEW.id AND e.type = 'step_waiting'
                AND instr(e.data, '"approval"') > 0 AND json_valid(e.data)
                AND json_type(e.data, '$.signal') = 'text' AND json_type(e.data, '$.approval') <> 'null'
                AND NOT EXISTS (
                    SELECT 1 FROM signals s WHERE s.run_id = e.run_id AND s.name = json_extract(e.data, '$.signal')
                )
                AND NOT EXISTS (
                    SELECT 1 FROM events c WHERE c.run_id = e.run_id AND c.seq > e.seq AND c.type = 'step_completed'
                        AND c.step = e.step AND c.iteration = e.iteration AND c.idx IS e.idx
                )
            ORDER BY e.seq;
        END;
        """,
    ),
    (
        11,
        """
        -- Every kill switch and policy the audit log ever set, by target, with its newest entry: an
        -- engine looks up each one in the log even when its row was deleted from the store
        -- (governance/backed.py). Partial: an insert of any other entry only tests its action.
        CREATE INDEX audit_governing ON audit (target, seq)
            WHERE action IN ('killswitch.set', 'killswitch.clear', 'policy.set');
        """,
    ),
    (
        12,
        """
        -- The status indexes list the runs nobody holds (pending, parked, ended, handed back); the
        -- runs an engine holds are in runs_owned. A run started and ended by one engine then writes
        -- each status index once (its end), not three times (its start, and its end moving it from
        -- 'running' to its last status): ~4 pages fewer at its commits. Queries name owner IS NULL
        -- (storage/sqlite.py list_runs, count_runs, claim_runs) and read the held runs from runs_owned.
        -- In creation order, not newest first: a new entry goes after the last of its status, so a
        -- full page splits less often (~1.3 pages fewer per run); lists read the range backwards.
        DROP INDEX runs_status;
        CREATE INDEX runs_status ON runs (status, created_at, id) WHERE owner IS NULL;
        DROP INDEX runs_workflow_status;
        CREATE INDEX runs_workflow_status ON runs (workflow, status, created_at, id) WHERE owner IS NULL;
        DROP INDEX runs_parent;
        CREATE INDEX runs_parent ON runs (parent_run_id, created_at, id) WHERE parent_run_id IS NOT NULL;
        """,
    ),
    (
        13,
        """
        -- Review of schema 12. runs_owned in creation order (was: by owner), with no status: a list
        -- reads the newest held runs up to its LIMIT, not every one sorted, and a claimed run's start
        -- (pending to running) does not write it. The status indexes also hold the runs marked held
        -- whose status no engine holds (parked, ended: an older release's, a copied or edited row),
        -- so a list of those statuses, pruning and counts read them there, never among the held
        -- runs. The owner last in runs_status: counts read it alone; the workflow last in
        -- runs_owned: a list of one workflow passes over others' held runs without their rows.
        DROP INDEX runs_owned;
        CREATE INDEX runs_owned ON runs (created_at, id, owner, workflow) WHERE owner IS NOT NULL;
        DROP INDEX runs_status;
        CREATE INDEX runs_status ON runs (status, created_at, id, owner)
            WHERE owner IS NULL OR status NOT IN ('pending', 'running');
        DROP INDEX runs_workflow_status;
        CREATE INDEX runs_workflow_status ON runs (workflow, status, created_at, id)
            WHERE owner IS NULL OR status NOT IN ('pending', 'running');
        """,
    ),
    (
        14,
        """
        -- One trigger keeps the inbox as a run's status changes (was two: approvals_ended and
        -- approvals_parked, doing the same). Every status update paid for both (each trigger on
        -- UPDATE OF status costs the statement ~2 us) and every run's end for a DELETE opening the
        -- inbox and both its indexes (~3 us) though it had no open request: the end now only looks
        -- its run up in the inbox's key. A run that parks lists its open requests again, as before.
        -- audit_governing's condition written with OR, not IN: SQLite built a table of the three
        -- actions for every insert into the audit log to test an entry against it (~2 us an entry,
        -- two entries a run); the queries name it the same way (GOVERNING_OR).
        DROP INDEX IF EXISTS audit_governing;
        CREATE INDEX audit_governing ON audit (target, seq)
            WHERE (action = 'killswitch.set' OR action = 'killswitch.clear' OR action = 'policy.set');
        DROP TRIGGER IF EXISTS approvals_ended;
        DROP TRIGGER IF EXISTS approvals_parked;
        DROP TRIGGER IF EXISTS approvals_kept;
        CREATE TRIGGER approvals_kept AFTER UPDATE OF status ON runs
        WHEN NEW.status = 'waiting' OR (NEW.status IN ('completed', 'failed', 'cancelled')
            AND EXISTS (SELECT 1 FROM approvals WHERE run_id = NEW.id))
        BEGIN
            DELETE FROM approvals WHERE run_id = NEW.id;
            INSERT OR IGNORE INTO approvals (run_id, name, seq, workflow, requested_at)
            SELECT e.run_id, json_extract(e.data, '$.signal'), e.seq, NEW.workflow, e.ts
            FROM events e INDEXED BY events_waiting
            WHERE NEW.status = 'waiting' AND e.run_id = NEW.id AND e.type = 'step_waiting'
                AND instr(e.data, '"approval"') > 0 AND json_valid(e.data)
                AND json_type(e.data, '$.signal') = 'text' AND json_type(e.data, '$.approval') <> 'null'
                AND NOT EXISTS (
                    SELECT 1 FROM signals s WHERE s.run_id = e.run_id AND s.name = json_extract(e.data, '$.signal')
                )
                AND NOT EXISTS (
                    SELECT 1 FROM events c WHERE c.run_id = e.run_id AND c.seq > e.seq AND c.type = 'step_completed'
                        AND c.step = e.step AND c.iteration = e.iteration AND c.idx IS e.idx
                )
            ORDER BY e.seq;
        END;
        """,
    ),
    (
        15,
        """
        -- The entries that made or changed a user (user.put, about 'user:NAME'): a server starting on
        -- a store without user rows asks whether it ever had users (server/auth.py had_users: users
        -- are disabled, never deleted), reading one entry of this index, not the whole log (_audit.USER_PUT).
        -- Partial: an insert of any other entry only tests its action.
        CREATE INDEX IF NOT EXISTS audit_user_put ON audit (seq) WHERE action = 'user.put';
        """,
    ),
]

#: The condition of the partial index ``audit_governing`` from schema 14, as queries must name it
#: for SQLite to use the index (schema 11 wrote it ``action IN (...)``: ``_audit.GOVERNING``).
GOVERNING_OR = "(action = 'killswitch.set' OR action = 'killswitch.clear' OR action = 'policy.set')"

#: A claim's condition leaving out the runs of the workflow versions an engine could not load (its
#: ``skip_versions``, one JSON parameter of ``[workflow, version, workflow_ref or ""]`` triples).
SKIPPED_VERSION = (  # not correlated: read once per claim into a temporary index, not once per run
    "(workflow, version, coalesce(workflow_ref, '')) NOT IN (SELECT json_extract(value, '$[0]'), "
    "json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each(?))"
)
