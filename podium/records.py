"""Core data types: run and step states, retry policy, stored records and the event log entries."""

from __future__ import annotations

import contextvars
import enum
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


class RunStatus(enum.StrEnum):
    """Where a run is in its life. ``completed``, ``failed`` and ``cancelled`` are final."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    """Suspended: waiting for a signal (an approval...) or a timer; no engine holds it."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINAL


_FINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


class StepStatus(enum.StrEnum):
    """The state of one step execution (one loop iteration, one fan-out item)."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    WAITING = "waiting"


class EventType(enum.StrEnum):
    """The kinds of entries in a run's append-only event log."""

    RUN_QUEUED = "run_queued"
    RUN_STARTED = "run_started"
    RUN_RESUMED = "run_resumed"
    RUN_WAITING = "run_waiting"
    RUN_HANDED_OFF = "run_handed_off"
    RUN_COMPLETED = "run_completed"
    RUN_FAILED = "run_failed"
    RUN_CANCELLED = "run_cancelled"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"
    STEP_RETRYING = "step_retrying"
    STEP_FAILED = "step_failed"
    STEP_SKIPPED = "step_skipped"
    STEP_CANCELLED = "step_cancelled"
    STEP_WAITING = "step_waiting"
    LOOP_ITERATION = "loop_iteration"


MAX_RETRY_AFTER = 900.0
"""The longest a step retry waits for a system's ``Retry-After`` (15 minutes)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How a failing step is retried.

    The delay before attempt ``n + 1`` is ``min(max_interval, initial_interval * backoff ** (n - 1))``,
    spread by up to ``jitter`` (a fraction) either way so that many retries do not arrive together.
    """

    max_attempts: int = 1
    """Attempts in all, the first included. 1 means no retry."""
    initial_interval: float = 0.1
    """Seconds before the first retry."""
    backoff: float = 2.0
    """Factor by which the delay grows after each retry."""
    max_interval: float = 30.0
    """Upper bound of one delay, in seconds."""
    jitter: float = 0.1
    """Random spread of each delay, as a fraction of it (0 to 1)."""
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    """Exception types that are retried. Others fail the step at once."""
    non_retryable: tuple[type[BaseException], ...] = ()
    """Exception types that are never retried, even if they match ``retry_on``."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.initial_interval < 0 or self.max_interval < 0:
            raise ConfigError("RetryPolicy intervals must be >= 0 seconds")
        if self.backoff < 1:
            raise ConfigError(f"RetryPolicy.backoff must be >= 1, got {self.backoff}")
        if not 0 <= self.jitter <= 1:
            raise ConfigError(f"RetryPolicy.jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_interval, self.initial_interval * self.backoff ** (attempt - 1))
        if self.jitter:
            base *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, base)

    def delay_for(self, exc: BaseException, attempt: int) -> float:
        """:meth:`delay`, or longer when ``exc`` says how long the system asked to wait
        (``retry_after``: a 429's ``Retry-After``, an open circuit's time left), up to
        :data:`MAX_RETRY_AFTER`: a retry sooner would only meet the same refusal and use up the attempts."""
        delay = self.delay(attempt)
        asked = getattr(exc, "retry_after", None)
        if isinstance(asked, int | float) and math.isfinite(asked) and asked > delay:
            return min(float(asked), MAX_RETRY_AFTER)
        return delay

    def should_retry(self, exc: BaseException, attempt: int) -> bool:
        if attempt >= self.max_attempts:
            return False
        if getattr(exc, "non_retryable", False):
            return False
        if self.non_retryable and isinstance(exc, self.non_retryable):
            return False
        return isinstance(exc, self.retry_on)


NO_RETRY = RetryPolicy()


@dataclass(kw_only=True, slots=True)
class RunRecord:
    """One row of the store's runs table."""

    id: str
    workflow: str
    version: str
    status: RunStatus
    input: str | None = None
    """Run input, as payload text (see ``podium._serde``)."""
    output: str | None = None
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    parent_run_id: str | None = None
    parent_step: str | None = None
    forked_from: str | None = None
    fork_step: str | None = None
    workflow_ref: str | None = None
    """How to load the workflow again (``module:attr`` or a YAML path), for resume in another process."""
    owner: str | None = None
    lease_expires_at: float | None = None
    cancel_requested: bool = False
    wake_at: float | None = None
    """For a waiting run: when a timer it waits on runs out (or a signal arrived)."""
    queue: str = "default"
    """The queue workers claim it from."""
    priority: int = 0
    """Higher first, within a queue."""
    tenant: str | None = None
    """Whose run it is, for fair scheduling between tenants."""
    labels: str | None = None
    """Worker labels its next steps need (comma-separated); only such workers claim it."""


@dataclass(kw_only=True, slots=True)
class Event:
    """One entry of a run's append-only event log. ``seq`` orders a run's events from 1."""

    run_id: str
    seq: int
    type: str
    ts: float
    step: str | None = None
    iteration: int = 0
    index: int | None = None
    attempt: int = 0
    data: str | None = None
    """Event details as JSON text: ``output`` (payload), ``error``, timings and so on."""


@dataclass(kw_only=True, slots=True)
class StepView:
    """What happened to one step execution, folded from the event log."""

    step: str
    iteration: int = 0
    index: int | None = None
    status: StepStatus = StepStatus.PENDING
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    """Every failed attempt's error, oldest first."""
    reused_from: str | None = None
    """For a forked run: the run whose result was reused for this step."""
    reason: str | None = None

    @property
    def key(self) -> str:
        return step_key(self.step, self.iteration, self.index)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


def step_key(step: str, iteration: int = 0, index: int | None = None) -> str:
    """A readable key for one step execution: ``step``, ``step#2`` (loop iteration), ``step[3]`` (item)."""
    key = step if not iteration else f"{step}#{iteration}"
    return key if index is None else f"{key}[{index}]"


def new_id() -> str:
    """A time-ordered, random run id (24 hex characters)."""
    return f"{int(time.time() * 1000):012x}{os.urandom(6).hex()}"


# -- the audit log's records (written by every store, checked by podium.governance.audit) ------

GENESIS = "0" * 64
#: The audit actions that set what governs every engine: kill switches and policies. Stores keep an
#: index of their entries' targets, so an engine finds every switch and policy the log set even when
#: its row was deleted from the store (``Store.governing_heads``).
GOVERNING_ACTIONS = ("killswitch.set", "killswitch.clear", "policy.set")


def governing_stamps(rows: Iterable[tuple[str, int]]) -> dict[str, str]:
    """Per target of ``rows`` (target, seq of one of its governing entries), the SHA-256 of its
    seqs in ascending order joined by commas: the stamp ``Store.governing_heads`` gives, which
    changes whenever an entry is added to the target, removed or renumbered. Not the newest seq:
    an entry planted with a seq past every one the store will give (PostgreSQL draws them from a
    sequence) would stay the newest, and hide each entry written after it."""
    seqs: dict[str, list[int]] = {}
    for target, seq in rows:
        seqs.setdefault(target, []).append(int(seq))
    return {t: hashlib.sha256(",".join(map(str, sorted(s))).encode()).hexdigest() for t, s in seqs.items()}
#: The shared chain of the audit log that anchors every writer's chain (see podium/storage/_audit.py).
ANCHOR_CHAIN = "anchors"
#: The action of an anchor entry: its target is the chain it anchors, its data that chain's head.
ANCHOR_ACTION = "audit.anchor"


@dataclass(kw_only=True, slots=True)
class AuditEntry:
    """One audit record: who did what to what, when and why."""

    seq: int = 0
    """Position in the whole log, from 1 (assigned by the store; unique, increasing within a chain,
    and signed, but not gap-free: concurrent writers draw from one sequence)."""
    ts: float
    actor: str
    """The user, token or service account (``local`` in local mode, ``engine`` for the engine itself)."""
    action: str
    """What happened: ``run.start``, ``run.cancel``, ``approval.decide``, ``killswitch.set``..."""
    target: str = ""
    """What it happened to: a run id, a workflow name, a user..."""
    data: str = "{}"
    """Details as JSON text: the reason, a decision, a prompt hash, tokens and cost..."""
    prev_hash: str = GENESIS
    """The hash of the entry before this one in its chain."""
    hash: str = ""
    chain: str | None = None
    """The chain it belongs to: a writer's own chain (one per open store), ``anchors`` (the global
    sequence of checkpoints of those chains), or None for an entry written before chains existed
    (the single legacy chain, ordered by ``seq``)."""
    cseq: int = 0
    """Position in its chain, from 1 (0 for a legacy entry)."""

    def details(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.data) if self.data else {}
        return result


def chain_body(prev_hash: str, e: AuditEntry) -> bytes:
    """The bytes of entry ``e`` chained to ``prev_hash`` that its hash covers (fields unit-separated).
    An entry of a chain also covers its chain, its place in it and its place in the whole log."""
    if e.chain is None:
        return f"{prev_hash}\x1f{e.seq}\x1f{e.ts!r}\x1f{e.actor}\x1f{e.action}\x1f{e.target}\x1f{e.data}".encode()
    return (
        f"{prev_hash}\x1f{e.chain}\x1e{e.cseq}\x1e{e.seq}\x1f{e.ts!r}\x1f{e.actor}\x1f{e.action}\x1f{e.target}"
        f"\x1f{e.data}"
    ).encode()


def chain_hash(prev_hash: str, e: AuditEntry) -> str:
    """The unkeyed (legacy) hash of entry ``e`` chained to ``prev_hash``: plain SHA-256. Stores sign
    new entries with their audit key instead (:mod:`podium._auditkey`)."""
    return hashlib.sha256(chain_body(prev_hash, e)).hexdigest()


@dataclass(frozen=True, slots=True)
class Writer:
    """Who writes through a connector now: the run whose step makes the call, and the later calls
    (``target.operation``) a person approved together with the call being made. The transactional
    outbox records it with each message, sealed, so the relay checks a message against the policy
    in force when it delivers (see :data:`WRITER`)."""

    workflow: str
    run_id: str
    approved: tuple[str, ...] = ()
    """The later calls a person approved with the current connector call (a ``transact``'s messages
    for operations a policy's ``approve_connectors`` names)."""
    approved_by: str | None = None
    seal: Callable[[str], str] | None = None
    """Signs what a message records of its writer (the store's audit key and id, ``AuditKeys.seal``), so
    that a writer of the business database cannot change it unseen; None when the engine does not
    audit (nothing is signed then)."""
    deployed: bool = True
    """Whether the run's workflow owns its name: it is the deployed workflow of that name (or the
    store has no users). False: a definition that only calls itself so, whose messages record
    ``undeployed:NAME`` (:data:`UNDEPLOYED`)."""

    @property
    def recorded_workflow(self) -> str:
        """The workflow as the outbox records it (what the relay finds the policy by)."""
        return self.workflow if self.deployed else UNDEPLOYED + self.workflow


UNDEPLOYED = "undeployed:"
"""How an outbox message records the workflow of a run that was not the deployed workflow of its
name (in a store with users): ``undeployed:NAME``. The relay checks it under ``*`` and NAME's policy
both, never NAME's alone; no workflow may be named so."""

WRITER: contextvars.ContextVar[Writer | None] = contextvars.ContextVar("podium_writer", default=None)
"""The :class:`Writer` of the code running now: set by the engine for the task that drives a run
(its steps' tasks inherit it), None outside any run."""
