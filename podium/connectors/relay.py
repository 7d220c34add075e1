"""The outbox relay: delivers the messages of a database's outbox through connector operations.

::

    relay = OutboxRelay(orders_db, {"slack": slack_hook, "events": nats})
    await relay.run_once()                      # deliver what is due, once
    async with relay.running(interval=1.0):     # or in the background, until the block ends
        ...

Each message is claimed with a lease (so several relays, in several processes, can share an outbox
and a message is in one relay's hands at a time), delivered with
``connector.guarded_call(operation, arguments, idempotency_key=row.key)`` (the breaker; one attempt:
the connector's own retries and Retry-After waits could outlast the lease), then marked ``sent``. A
retryable failure puts it back with exponential backoff (or the system's Retry-After); a
non-retryable one parks it as ``failed`` (kept, listed,
``podium outbox retry KEY`` puts it back). No message is ever deleted. A relay that dies between the
delivery and the mark leaves the lease to expire; the message is then delivered again, with the same
key: at-least-once, and effectively-once at a target that deduplicates by key.

A governed relay (:func:`held_with`) also reserves each message in the Podium store's ledger just
before its call (:mod:`podium.connectors._ledger`), so that of two relays over two outboxes holding a
copy of one message (same key, target, operation, arguments) one delivers it: the other leaves its
copy pending until the reservation ends, then marks it sent as a duplicate (or sends it, if the
delivery failed).

A relay only delivers to the connectors it is given: a message for another target waits for a relay
that holds it (deny by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import shlex
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .._auditkey import KEY_ENV
from ..errors import ConfigError, ConnectorCircuitOpen, ConnectorDrift, ConnectorError
from ..records import UNDEPLOYED
from ..resilience import NO_RETRIES, Backoff
from ..secret import redact, redact_known
from ._base import Connector, arguments_hash
from ._ledger import SENT, UNREADABLE, Ledger, Reservation, fingerprint
from .outbox import OutboxMessage, message
from .sql import SqlConnector

log = logging.getLogger("podium.connectors.relay")

_MAX_WAIT = 86_400.0
"""The longest a message is put back for (a target's Retry-After of a week is looked at daily)."""


Audit = Callable[[dict[str, Any]], Awaitable[None]]
"""Records one delivery in the audit log (:func:`audit_with`)."""


def audit_with(governance: Any) -> Audit:
    """Deliveries audited through ``governance`` (a client's), as ``connector.relay`` entries."""

    async def audit(data: dict[str, Any]) -> None:
        await governance.record("connector.relay", f"capability:{data['connector']}", **data)

    return audit


Held = Callable[[], Awaitable[set[str]]]
"""The target connectors whose deliveries wait now (``*``: all of them): :func:`held_with`."""

Refusal = Callable[[OutboxMessage], Awaitable[str | None]]
"""Why the policy in force now refuses delivering a message, or None (:func:`held_with`)."""

def _undeployed(workflow: str) -> str:
    """Who a refusal names for a message recorded by a run that was not the deployed ``workflow``."""
    return (
        f"the policy of workflow {workflow!r} (this message was recorded by a run of a definition not deployed, "
        f"only named {workflow!r}, so the default policy '*' holds it as well; deploy it with 'podium workflows "
        "deploy FILE' and run it again to be under its own policy alone)"
    )


class Governed:
    """What a relay obeys, read through ``governance`` (a client's) from the store at each claim,
    so a switch or policy set in another process applies to the next batch:

    * kill switches hold targets (called: the held names): ``connector NAME`` holds that
      connector's messages, ``connector --all`` and ``all`` hold every one;
    * :meth:`refusal`: the policy of the workflow whose run recorded a message, as it is now,
      refuses it (``allowed_connectors``; ``approve_connectors`` when nobody approved it).

    A message's workflow, run and approval are columns of the business database, so they are taken
    only from a seal that matches (made with the store's audit key by the engine that recorded the
    message in a run: :func:`~podium.connectors.outbox.seal_text`). A seal that does not match (the
    row was changed in the database) or whose key is not held here refuses the message; a message no
    run sealed (recorded outside any run, by an earlier release, or stripped of its seal) is checked
    under the default policy ``*`` and under the workflow it names, its approval not taken. With
    auditing off nothing is signed: the columns are taken as written."""

    def __init__(self, governance: Any) -> None:
        self.governance = governance

    async def unbounded(self) -> str | None:
        """A warning when nothing bounds the messages no run sealed: a store with users and no
        default policy ``*`` (they are checked under ``*``, so they go out unchecked), else None."""
        gov = self.governance
        await gov.refresh()
        if not getattr(gov, "users_exist", False) or "*" in (gov.policy_cache or {}):
            return None
        return (
            "warning: this store has users and no default policy '*', so an outbox message no run sealed (a "
            "script's, or one someone who can write the business database inserted) is delivered unchecked; "
            "bound them: podium policy set '*' --allow-connector NAME (the systems such messages may reach), "
            "--approve-connector NAME.OPERATION for those a person must approve"
        )

    @property
    def sent(self) -> Ledger:
        """The deliveries of this store's relays, and their reservations (in the Podium store: a
        writer of the business database cannot undo them by setting a row back to pending)."""
        return Ledger(self.governance.store, sealed=bool(getattr(self.governance, "audit_enabled", False)))

    async def delivered(self, msg: OutboxMessage) -> float | None:
        """When a relay of this store delivered ``msg`` (or a message like it), or None."""
        return await self.sent.delivered(msg)

    async def note_delivered(self, msg: OutboxMessage) -> None:
        """Record that ``msg`` was delivered."""
        key = fingerprint(msg)
        await self.governance.store.kv_put(SENT, key, self.sent.delivered_note(key))

    async def __call__(self) -> set[str]:
        await self.governance.refresh()  # the switches and policies of now
        switches = self.governance.switch_cache
        names = {key.split(":", 1)[1] for key in switches if key.startswith("connector:")}
        return names | {"*"} if "all:*" in switches else names

    async def refusal(self, msg: OutboxMessage) -> str | None:
        """Why ``msg`` may not be delivered now (audited as ``policy.refuse``), or None."""
        signed = None if msg.seal is None else self.governance.store.audit_keys.verify_seal(msg.sealed_text(), msg.seal)
        reason = self._unsealed(msg, signed) or self._policy(msg, trusted=bool(signed))
        if reason is not None:
            await self.governance.record(
                "policy.refuse", f"run:{msg.run_id}" if signed else f"capability:{msg.target}", actor="engine",
                connector=msg.target, operation=msg.operation, workflow=msg.workflow, run=msg.run_id, message=msg.id,
                sealed=signed, reason="outbox delivery: " + reason,
            )  # fmt: skip
        return reason

    @staticmethod
    def _unsealed(msg: OutboxMessage, signed: bool | None) -> str | None:
        """Why ``msg``'s seal refuses it (it does not match, or its key is not here), or None."""
        if msg.seal is None or signed:
            return None
        if signed is None:
            kid = msg.seal.partition(":")[0][:12]
            return (
                f"it is sealed with audit key {kid!r}, which this relay does not hold: point {KEY_ENV} at that key "
                f"file (a rotated key is kept as audit.key.{kid}) where the relay runs, then put the message back "
                "with 'podium outbox retry --source SOURCE KEY'; no such key anywhere means the seal was forged"
            )
        if "." not in msg.seal.partition(":")[2]:
            return (
                "its seal does not name this store: it was recorded by a release before seals named their store "
                "(pending when the store was upgraded), or copied from another store's outbox. If the message is "
                "wanted, record it again (run the workflow again), else leave it set aside"
            )
        return (
            f"its row was changed after it was recorded (it now names workflow {msg.workflow!r}, run "
            f"{msg.run_id!r}, approved by {msg.approved_by!r}): the seal the engine made with the audit key no "
            "longer matches its workflow, run, approval, target, operation, arguments or key, so someone who can "
            "write this database changed it. Find out who; if the message is wanted, record it again (run the "
            "workflow again), else leave it set aside"
        )

    def _policy(self, msg: OutboxMessage, *, trusted: bool) -> str | None:
        """Why the policies of now refuse ``msg``: those of its sealed workflow (``trusted``), else
        ``*``'s and those of the workflow it names, with no approval taken."""
        gov = self.governance
        policies = gov.policy_cache or {}
        wf, run = msg.workflow, msg.run_id
        undeployed = wf is not None and wf.startswith(UNDEPLOYED)  # a look-alike's: '*' holds it too
        if undeployed:
            wf = wf[len(UNDEPLOYED) :]  # type: ignore[index]
        named = policies.get(wf) if wf is not None and not wf.startswith("agent:") else None  # agents' keys
        if undeployed and (trusted or not gov.audit_enabled):
            scoped = [(_undeployed(wf or ""), named)] if named is not None else []
            scoped.append(("the default policy '*', which holds a run not deployed,", policies.get("*")))
            approved, before = msg.approved_by is not None, ""
        elif trusted or not gov.audit_enabled:  # sealed, or nothing is signed here: as written
            if wf is None:
                scoped = [("the default policy '*' (the message was recorded outside any run)", policies.get("*"))]
            elif named is not None:
                scoped = [(f"the policy of workflow {wf!r}" + (f" (run {run})" if run else ""), named)]
            else:
                scoped = [(f"the default policy '*', which workflow {wf!r} is under,", policies.get("*"))]
            approved, before = msg.approved_by is not None, ""
        else:
            scoped = [(f"the policy of workflow {wf!r}", named)] if named is not None else []
            scoped.append(("the default policy '*'", policies.get("*")))
            approved = False
            before = (
                "no run sealed this message (recorded outside any run, by an earlier release, or with its seal "
                "removed in the database), so it is checked under the default policy '*'"
                + (f" and under the policy of workflow {wf!r}, which it names" if named is not None else "") + ": "
            )
        for who, policy in scoped:
            found = None if policy is None else policy.refuses_message(msg.target, msg.operation, approved=approved)
            if found is None:
                continue
            field, why = found
            if field == "allowed_connectors":
                fix = "once the policy allows it, put it back with 'podium outbox retry --source SOURCE KEY'"
            elif msg.approved_by is not None and not approved:
                why += f", and the approval it names ({msg.approved_by!r}) is not sealed, so it is not taken"
                fix = "the relay cannot ask: record it in a run (which asks a person first), or change the policy"
            else:
                why += ", and nobody approved it when it was recorded"
                fix = "the relay cannot ask: run the workflow again to record it with an approval, or change the policy"
            return f"{before}{who} {why}; {fix}"
        return None


def _stamp(when: float) -> str:
    """``when`` as the rows say it; a time ``time.gmtime`` cannot show (a note written by hand into
    the ledger: ``1e300``, infinity) is said so instead of raising in the middle of a batch."""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))
    except (OverflowError, ValueError, OSError):
        return f"{when!r} (no time a relay writes)"


def _duplicate(when: float) -> dict[str, Any]:
    """The row of a message delivered before (set back to pending, or copied from another outbox)."""
    stamp = _stamp(when)
    return {
        "status": "sent", "lease_until": None,
        "last_error": f"not sent again: a relay of this store delivered this message (same key, target, "
        f"operation and arguments) at {stamp}; its row was set back to pending or copied from another "
        "outbox, by someone who can write this database",
    }  # fmt: skip


def _drifted(msg: OutboxMessage, exc: ConnectorDrift) -> str:
    """What a sent row says when the target applied the message and answered in a shape its
    operation's contract does not describe (the diff names kinds and paths, never values)."""
    changes = "; ".join(str(d.get("message") or f"{d.get('kind')} {d.get('path')}") for d in exc.diff[:5])
    return (
        f"delivered (the target answered with success), but its answer does not match the contract of "
        f"{msg.target}.{msg.operation}: {changes or 'see the contract'}; not sent again (the target applied it). "
        "Add a field mapping for later answers (docs/connectors.md, 'Contracts, drift and quarantine')"
    )[:1000]


def _applied(exc: BaseException) -> bool:
    """The call failed after the target answered with success (a 2xx whose body cannot be read): it
    applied the message, and sending it again could apply it twice."""
    status = getattr(exc, "status", None) if isinstance(exc, ConnectorError) else None
    return isinstance(status, int) and 200 <= status < 300


def _unreadable(msg: OutboxMessage, exc: BaseException) -> str:
    """What a sent row says when the target applied the message but its answer could not be read."""
    return (
        f"delivered (the target answered HTTP {getattr(exc, 'status', None)}, so it applied it), but its answer could not be read: "
        f"{redact(str(exc))[:300]}; not sent again (that could apply it twice). Check in {msg.target} what it did"
    )[:1000]


def held_with(governance: Any) -> Governed:
    """What a relay obeys through ``governance`` (a client's): the kill switches that hold targets,
    and the policies that refuse messages (:class:`Governed`)."""
    return Governed(governance)


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    """What one :meth:`OutboxRelay.run_once` did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    refused: int = 0
    """Set aside as ``failed`` unsent: the policy in force refuses them (``last_error`` says why)."""
    duplicates: int = 0
    """Not sent again: a relay of this store delivered them before (a row set back to pending, or
    copied from another outbox); marked ``sent``, ``last_error`` says when."""
    waiting: int = 0
    """Left pending, unsent and their attempts uncounted: another relay of this store is delivering
    a copy of them (from another outbox) now; checked again when its reservation ends."""

    @property
    def handled(self) -> int:
        return self.sent + self.retrying + self.failed + self.refused + self.duplicates + self.waiting


class OutboxRelay:
    """Delivers ``source``'s outbox through ``connectors`` (name -> connector).

    ``lease`` is how long a claimed message is this relay's (longer than a delivery takes);
    ``backoff`` spaces the attempts of a message that keeps failing (``max_attempts`` on it: after
    that many relay attempts the message is parked as failed; the default never gives up).
    """

    def __init__(
        self,
        source: SqlConnector,
        connectors: Mapping[str, Connector],
        *,
        batch: int = 100,
        concurrency: int = 8,
        lease: float = 60.0,
        backoff: Backoff = Backoff(max_attempts=1_000_000, initial=1.0, max_delay=300.0),
        audit: Audit | None = None,
        source_name: str = "",
        held: Held | None = None,
        refusal: Refusal | None = None,
    ) -> None:
        if not isinstance(source, SqlConnector):
            raise ConfigError(f"an outbox relay reads a sql connector's database, got {type(source).__name__}")
        self.source = source
        self.connectors = dict(connectors)
        self.batch, self.lease, self.backoff = batch, lease, backoff
        self._slots = asyncio.Semaphore(concurrency)
        self.owner = f"{socket.gethostname()[:32]}:{os.getpid()}:{id(self) % 100000}"
        """Who this relay is (host, process), in the rows it leases."""
        self._claims = 0
        self.audit = audit
        """Called with each delivery's audit data (``connector.relay``: target, operation, the
        arguments' hash, outcome; never the values), as a run's own calls are audited."""
        self.source_name = source_name
        """The source's registered name, for the audit entries."""
        self.held = held
        """Which targets kill switches hold now (:func:`held_with`): their messages stay pending,
        their attempts uncounted, until the switch is cleared."""
        self.refusal = refusal or getattr(held, "refusal", None)
        """Why the policy of now refuses a message (:meth:`Governed.refusal`; ``held_with`` brings
        it): a refused message is set aside as ``failed``, unsent, with the reason."""
        self.ledger = held if isinstance(held, Governed) else None
        """Where deliveries are reserved and noted, so that none is made twice (the Podium store,
        through :attr:`Governed.sent`); None: a relay without governance relies on its targets'
        deduplication by key."""

    @property
    def table(self) -> sa.Table:
        return self.source.outbox.messages

    async def claim(self) -> list[OutboxMessage]:
        """Due messages for the connectors this relay holds, each leased to it (oldest first)."""
        targets = set(self.connectors)
        if self.held is not None and targets:
            held = await self.held()
            targets = set() if "*" in held else targets - held
        if not targets:
            return []
        await self.source.ensure_outbox()
        t, now = self.table, time.time()
        free = sa.or_(t.c.lease_until.is_(None), t.c.lease_until < now)

        self._claims += 1
        token = f"{self.owner}#{self._claims}"  # this claim's mark on the rows it wins

        def work(conn: sa.Connection) -> list[OutboxMessage]:
            due = (
                sa.select(t.c.id)
                .where(t.c.status == "pending", t.c.next_at <= now, t.c.target.in_(sorted(targets)), free)
                .order_by(t.c.id)
                .limit(self.batch)
            )
            ids = list(conn.execute(due).scalars())
            if not ids:
                return []
            # One conditional update: a row another relay leased in the meantime no longer matches,
            # so two relays never both win the same message.
            conn.execute(
                sa.update(t)
                .where(t.c.id.in_(ids), t.c.status == "pending", free)
                .values(lease_until=now + self.lease, lease_owner=token)
            )
            won = sa.select(t).where(t.c.id.in_(ids), t.c.lease_owner == token).order_by(t.c.id)
            # MariaDB/MySQL compare names without case or trailing spaces ('BANK ' = 'bank'): a
            # message for another name stays leased (out of the next claims until the lease ends)
            # and is left for a relay that holds that very name
            return [m for m in map(message, conn.execute(won).mappings()) if m.target in targets]

        return list(await self.source._run(work))

    def _pasted(self, text: str, msg: OutboxMessage) -> str:
        """``text`` with its retry command as it is pasted: this message's source and key."""
        if not self.source_name:
            return text
        return text.replace("--source SOURCE KEY", f"--source {shlex.quote(self.source_name)} {shlex.quote(msg.key)}")

    async def _send(self, msg: OutboxMessage) -> tuple[str, dict[str, Any]]:
        """Deliver one claimed message: its outcome and the row's new values (not yet written)."""
        connector = self.connectors[msg.target]
        attempts = msg.attempts + 1
        if msg.unreadable is not None:  # set aside unsent; the rest of the batch goes on
            return "failed", {"status": "failed", "lease_until": None, "last_error": msg.unreadable[:1000]}
        reason = await self.refusal(msg) if self.refusal is not None else None
        if reason is not None:  # set aside, not retried: 'podium outbox retry' puts it back (checked again)
            return "refused", {"status": "failed", "lease_until": None, "last_error": f"refused: {self._pasted(reason, msg)}"[:1000]}
        ledger = self.ledger.sent if self.ledger is not None else None
        async with self._slots:
            # after the seal and policy checks (a changed row is refused as such, not taken for a
            # replay), and just before the call, so that the reservation's lease covers the call
            held = None if ledger is None else await ledger.reserve(msg, owner=self.owner, lease=self.lease)
            if held is not None and held.delivered_at is not None:
                return "duplicate", _duplicate(held.delivered_at)
            if held is not None and held.busy is not None:
                return "waiting", self._waiting(msg, held)
            drifted = None
            try:
                # one attempt per claim: a retry, or a Retry-After waited out, is the relay's backoff
                # (next_at), never a wait inside the call that could outlast the lease, so that another
                # relay of this outbox claims the message and delivers it too
                result = await connector.guarded_call(
                    msg.operation, msg.arguments, idempotency_key=msg.key, label=msg.target, retry=NO_RETRIES
                )
            except ConnectorDrift as exc:  # the target applied it: only its answer is not the contract's
                result, drifted = exc.payload, _drifted(msg, exc)
            except Exception as exc:  # not sent: a copy may go (a cancelled call's reservation expires)
                if _applied(exc):  # the target answered 2xx: it applied the write, only its answer is unreadable
                    result, drifted = None, _unreadable(msg, exc)
                else:
                    if ledger is not None and held is not None and held.mine is not None:
                        await self._release(ledger, msg, held.mine)
                    if not isinstance(exc, ConnectorError):
                        raise
                    again = (exc.retryable or isinstance(exc, ConnectorCircuitOpen)) and attempts < self.backoff.max_attempts
                    # the business database's column, shown by processes that never read the secret: masked here
                    values: dict[str, Any] = {"attempts": attempts, "lease_until": None, "last_error": redact(str(exc))[:500]}
                    if again:  # a Retry-After a connector gave as no finite time, or past a day, is a day at most
                        wait = exc.retry_after if exc.retry_after is not None and math.isfinite(exc.retry_after) else None
                        values["next_at"] = time.time() + min(self.backoff.delay(attempts, wait), _MAX_WAIT)
                    else:
                        values["status"] = "failed"
                    return ("retrying" if again else "failed"), values
        note = drifted
        if ledger is not None and held is not None and held.mine is not None:
            note = "; ".join(n for n in (self._taken_over(msg, held), drifted) if n) or None
            try:
                if not await ledger.settle(msg, held.mine):
                    log.warning(
                        "outbox message %s took longer to deliver than the relay's lease (%.1fs): another relay could "
                        "take its reservation over and deliver a copy; give the relay a longer --lease", msg.id, self.lease,
                    )  # fmt: skip
            except Exception:  # delivered: its row is marked all the same (a copy could go once the reservation ends)
                log.warning("could not note the delivery of outbox message %s in the store", msg.id, exc_info=True)
        text = redact_known(json.dumps(result, default=str))  # a credential the target echoed, masked
        return "sent", {
            "status": "sent",
            "sent_at": time.time(),
            "attempts": attempts,
            "lease_until": None,
            "last_error": note,
            "result": text if len(text) <= 10_000 else None,
        }

    @staticmethod
    async def _release(ledger: Ledger, msg: OutboxMessage, mine: str) -> None:
        try:
            await ledger.release(msg, mine)
        except Exception:  # the reservation then ends with its lease
            log.warning("could not release the reservation of outbox message %s in the store", msg.id, exc_info=True)

    def _waiting(self, msg: OutboxMessage, held: Reservation) -> dict[str, Any]:
        """The row of a message whose copy another relay is delivering now: left pending until then
        (looked at again within this relay's lease at the latest: a reservation far ahead is no
        relay's lease, but a clock set wrong or a note written by hand)."""
        stamp = _stamp(held.until)
        why = (
            f"not sent yet: another relay of this store ({held.busy}) is delivering a copy of this message (same key, "
            f"target, operation and arguments, from another outbox) and holds it until {stamp}; left pending until "
            "then: once that delivery is noted this row is marked sent, unsent, and if it failed this copy goes. "
            "To look again sooner: 'podium outbox retry --source SOURCE KEY'"
        )
        again = min(held.until, time.time() + self.lease)
        return {"lease_until": None, "next_at": again, "last_error": self._pasted(why, msg)[:1000]}

    @staticmethod
    def _taken_over(msg: OutboxMessage, held: Reservation) -> str | None:
        """What a sent row says when its delivery took over a stale reservation, else None."""
        if held.took_over is None:
            return None
        log.warning("outbox message %s: took over the stale reservation of relay %s", msg.id, held.took_over)
        if held.took_over == UNREADABLE:  # not a relay's: whether a relay delivered it is not known either
            return (
                "delivered after taking over a stale reservation: the Podium store's ledger held a note for this message "
                "that no relay writes (put there by someone who can write that database), so whether a relay delivered it "
                "before is not known; a target that deduplicates by Idempotency-Key applied it once"
            )
        stamp = _stamp(held.until)
        return (
            f"delivered after taking over a stale reservation: relay {held.took_over} held this message until {stamp} "
            "and never noted the outcome (it stopped, or lost the Podium store, during its delivery), so the target may "
            "have received it twice; a target that deduplicates by Idempotency-Key applied it once"
        )[:1000]

    async def _record(self, done: list[tuple[OutboxMessage, dict[str, Any]]]) -> None:
        """Write the outcomes of a batch in one transaction (a message another relay has marked
        meanwhile, after this one's lease ran out, is left as that relay marked it)."""
        t = self.table

        def work(conn: sa.Connection) -> None:
            for msg, values in done:
                conn.execute(sa.update(t).where(t.c.id == msg.id, t.c.status == "pending").values(**values))

        if done:
            await self.source._run(work)

    async def deliver(self, msg: OutboxMessage) -> str:
        """Deliver one claimed message and record the outcome: ``sent``, ``retrying``, ``failed``,
        ``refused``, ``duplicate`` or ``waiting``."""
        outcome, values = await self._send(msg)
        await self._record([(msg, values)])
        await self._audited([(msg, outcome, values)])
        return outcome

    async def _audited(self, done: list[tuple[OutboxMessage, str, dict[str, Any]]]) -> None:
        if self.audit is None:
            return
        for msg, outcome, values in done:
            if outcome == "waiting":  # no delivery: the relay delivering the copy audits its own
                continue
            data = {
                "source": self.source_name, "connector": msg.target, "operation": msg.operation, "message": msg.id,
                "arguments_sha256": arguments_hash(msg.arguments), "outcome": outcome,
            }  # fmt: skip
            if msg.workflow is not None:
                data.update(workflow=msg.workflow, run=msg.run_id)
            if outcome == "refused":
                data["reason"] = values.get("last_error")
            elif outcome == "sent" and values.get("last_error"):  # a stale reservation taken over
                data["note"] = values["last_error"]
            try:
                await self.audit(data)
            except Exception:  # delivered and marked already: say so, and go on
                log.warning("could not audit the delivery of outbox message %s", msg.id, exc_info=True)

    async def run_once(self) -> Delivery:
        """Claim what is due, deliver it (up to ``concurrency`` at a time), and record the outcomes
        in one transaction: a relay that dies before that re-delivers the batch (same keys)."""
        claimed = await self.claim()
        results = await asyncio.gather(*(self._send(m) for m in claimed), return_exceptions=True)
        # one message whose delivery raised (the Podium store unreachable for its reservation) is left
        # to its lease; the others' outcomes are recorded and audited all the same (a batch that
        # failed whole left messages delivered, and noted in the ledger, with no row marked nor entry)
        done = [(m, r) for m, r in zip(claimed, results, strict=True) if not isinstance(r, BaseException)]
        await self._record([(m, values) for m, (_, values) in done])
        await self._audited([(m, outcome, values) for m, (outcome, values) in done])
        for r in results:
            if isinstance(r, BaseException):
                raise r
        outcomes = [o for _, (o, _) in done]
        return Delivery(
            sent=outcomes.count("sent"), retrying=outcomes.count("retrying"), failed=outcomes.count("failed"),
            refused=outcomes.count("refused"), duplicates=outcomes.count("duplicate"), waiting=outcomes.count("waiting"),
        )  # fmt: skip

    async def run(self, stop: asyncio.Event, *, interval: float = 1.0) -> None:
        """Deliver until ``stop`` is set: at once while there is work, else every ``interval`` seconds.
        A database that does not answer is waited out (the messages are safe in it)."""
        while not stop.is_set():
            try:
                done = await self.run_once()
            except ConnectorError as exc:  # the database is down: wait, the messages are safe in it
                log.warning("outbox relay %s: %s", self.owner, exc)
                done = Delivery()
            except Exception:  # never let one bad batch stop the relay; its leases run out
                log.exception("outbox relay %s: a batch failed", self.owner)
                done = Delivery()
            if done.handled and done.handled >= self.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    @contextlib.asynccontextmanager
    async def running(self, *, interval: float = 1.0) -> AsyncIterator[OutboxRelay]:
        """Run the relay in the background for the duration of the block."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop, interval=interval))
        try:
            yield self
        finally:
            stop.set()
            await task
