"""The audit log (감사 로그): who asked what and which documents were shown, append-only and
hash-chained, so a removed or edited entry is detected.

    log = AuditLog(state_db(state_dir))
    log.record(who, "ask", question="연차휴가는?", returned=["/d/규정.pdf"], cited=["/d/규정.pdf"])
    log.verify() -> AuditCheck(ok=True, entries=1, problem=None)
    log.entries(since="2026-12-01") -> [{"id": 1, "time": …, "caller": "kim", "route": "api", …}]

Each entry stores its fields and `hash = SHA-256(previous hash + the entry's canonical JSON)`;
`chain_head` in the meta table is the last hash, so removing the newest entries is detected too.
Pruning old entries (`audit.retention_days`) moves the chain's anchor to the last removed hash,
so what remains still verifies. It is tamper-evident, not tamper-proof: someone who can write
the file can rebuild the chain; export it elsewhere for that (`chulcheo audit export`).

`via("api")` marks the front door (api, openai, mcp, ui, cli) of the calls made inside it; the
service reads it when it records.
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import functools
import hashlib
import io
import json
import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from .auth import Principal
from .state import as_state_db
from .statedb import StateDB

log = logging.getLogger(__name__)

_VIA: contextvars.ContextVar[str] = contextvars.ContextVar("chulcheo_via", default="cli")
FIELDS = ("time", "caller", "key_id", "groups", "route", "action", "question", "question_sha256",
          "returned", "cited", "outcome", "detail")


class AuditSettings(BaseModel):
    """`[audit]`: the audit log in the state folder."""

    enabled: bool = True
    # false: only a SHA-256 of each question is kept (who asked is still recorded)
    store_questions: bool = True
    # entries older than this are pruned (the chain stays verifiable); 0 keeps everything
    retention_days: int = Field(365, ge=0)


@contextlib.contextmanager
def via(route: str) -> Iterator[None]:
    """Calls made inside are recorded as coming through `route` ("api", "openai", "mcp", "ui")."""
    token = _VIA.set(route)
    try:
        yield
    finally:
        _VIA.reset(token)


def current_via() -> str:
    return _VIA.get()


@dataclass(frozen=True)
class AuditCheck:
    ok: bool
    entries: int
    problem: str | None = None


_UPSERT = " ON CONFLICT (key) DO UPDATE SET value = excluded.value"


def _digest(prev: str, entry: dict[str, Any]) -> str:
    body = json.dumps({k: entry.get(k) for k in FIELDS}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + "\n" + body).encode("utf-8")).hexdigest()


class AuditLog:
    """The audit entries of one state database (see the module docstring)."""

    def __init__(self, db: StateDB | Path, settings: AuditSettings | None = None) -> None:
        self.settings = settings or AuditSettings()
        self.db = as_state_db(db)
        self.path = self.db.path
        self.db.ensure("CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY, time TEXT NOT NULL,"
                                  " caller TEXT, key_id TEXT, groups TEXT, route TEXT, action TEXT NOT NULL,"
                                  " question TEXT, question_sha256 TEXT, returned TEXT, cited TEXT, outcome TEXT,"
                                  " detail TEXT, prev TEXT NOT NULL, hash TEXT NOT NULL)")
        self.db.ensure("CREATE TABLE IF NOT EXISTS audit_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._lock = threading.Lock()
        self._pruned_on = ""

    # ------------------------------------------------------------------ writing
    def record(self, who: Principal | None, action: str, *, question: str | None = None,
               returned: Iterable[str] = (), cited: Iterable[str] = (), outcome: str = "ok",
               detail: str = "", route: str | None = None) -> None:
        """Append one entry (never raises: a failing audit write is logged, the request goes on)."""
        if not self.settings.enabled:
            return
        entry = {
            "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            "caller": who.name if who else "", "key_id": who.key_id if who else "",
            "groups": who.groups_text if who else "*",
            "route": route or current_via(), "action": action,
            "question": question if question is not None and self.settings.store_questions else None,
            "question_sha256": hashlib.sha256(question.encode()).hexdigest() if question is not None else None,
            "returned": json.dumps(sorted(set(returned)), ensure_ascii=False),
            "cited": json.dumps(sorted(set(cited)), ensure_ascii=False),
            "outcome": outcome, "detail": detail[:500],
        }
        try:
            with self._lock, self.db.connect() as db:
                self.db.serialize_writes(db, "chulcheo-audit")  # one writer at a time, across replicas too
                prev = self._meta(db, "chain_head") or self._meta(db, "chain_anchor") or ""
                digest = _digest(prev, entry)
                db.execute(f"INSERT INTO audit ({', '.join(FIELDS)}, prev, hash) VALUES "
                           f"({', '.join('?' * len(FIELDS))}, ?, ?)", [entry[k] for k in FIELDS] + [prev, digest])
                db.execute("INSERT INTO audit_meta VALUES ('chain_head', ?)" + _UPSERT, (digest,))
            self._prune_daily()
        except Exception as exc:  # the audit must never take the service down; the log says it failed
            log.error("audit entry not written (%s %s by %s): %s", action, entry["route"], entry["caller"], exc)

    def prune(self, now: datetime | None = None) -> int:
        """Remove entries older than retention_days; the chain's anchor moves to the last removed hash."""
        days = self.settings.retention_days
        if days <= 0:
            return 0
        cutoff = ((now or datetime.now(timezone.utc)) - timedelta(days=days)).isoformat(timespec="milliseconds")
        with self._lock, self.db.connect() as db:
            self.db.serialize_writes(db, "chulcheo-audit")
            last = db.execute("SELECT id, hash FROM audit WHERE time < ? ORDER BY id DESC LIMIT 1", (cutoff,)).fetchone()
            if last is None:
                return 0
            removed = db.execute("DELETE FROM audit WHERE id <= ?", (last[0],)).rowcount
            db.execute("INSERT INTO audit_meta VALUES ('chain_anchor', ?)" + _UPSERT, (last[1],))
        log.info("audit: pruned %d entries older than %d days", removed, days)
        return removed

    def _prune_daily(self) -> None:
        today = datetime.now(timezone.utc).date().isoformat()
        if self._pruned_on != today:
            self._pruned_on = today
            self.prune()

    # ------------------------------------------------------------------ reading
    def verify(self) -> AuditCheck:
        """Walk the chain from its anchor: every entry's hash must follow from the one before."""
        with self.db.connect() as db:
            prev = self._meta(db, "chain_anchor") or ""
            head = self._meta(db, "chain_head") or ""
            count = 0
            cursor = db.execute(f"SELECT id, {', '.join(FIELDS)}, prev, hash FROM audit ORDER BY id")
            for row in cursor:
                count += 1
                entry = dict(zip(("id", *FIELDS), row[:-2]))
                if row[-2] != prev:
                    return AuditCheck(False, count, f"entry {entry['id']}: the entry before it was removed or changed")
                if _digest(prev, entry) != row[-1]:
                    return AuditCheck(False, count, f"entry {entry['id']}: its content was changed")
                prev = row[-1]
            if prev != (head or prev):
                return AuditCheck(False, count, "the newest entries were removed (the chain ends before its head)")
        return AuditCheck(True, count)

    def entries(self, since: str | None = None, limit: int | None = None, who: Principal | None = None) -> list[dict[str, Any]]:
        """Entries from `since` (ISO date or time), oldest first; with `who`, only those of
        callers within its groups (an admin's reach ends at its groups)."""
        query = f"SELECT id, {', '.join(FIELDS)}, hash FROM audit"
        args: list[Any] = []
        if since:
            query += " WHERE time >= ?"
            args.append(since)
        query += " ORDER BY id"
        out = []
        with self.db.connect() as db:
            for row in db.execute(query, args):
                entry = dict(zip(("id", *FIELDS, "hash"), row))
                entry["returned"] = json.loads(entry["returned"] or "[]")
                entry["cited"] = json.loads(entry["cited"] or "[]")
                if who is not None and not who.covers_text(entry["groups"] or ""):
                    continue
                out.append(entry)
        return out[-limit:] if limit else out

    @staticmethod
    def to_csv(entries: list[dict[str, Any]]) -> str:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=["id", *FIELDS, "hash"])
        writer.writeheader()
        for e in entries:
            writer.writerow({**e, "returned": " ".join(e["returned"]), "cited": " ".join(e["cited"])})
        return buf.getvalue()

    @staticmethod
    def _meta(db, key: str) -> str | None:
        row = db.execute("SELECT value FROM audit_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None


@dataclass
class Note:
    """What an audited call fills in while it runs: the doc ids it returned and cited."""

    returned: list[str]
    cited: list[str]
    outcome: str = "ok"
    detail: str = ""


def outcome_of(exc: BaseException) -> str:
    """"error: RateLimited" — the kind of failure, never its text (which may hold a question)."""
    return "client_gone" if isinstance(exc, GeneratorExit) else f"error: {type(exc).__name__}"


@contextlib.contextmanager
def audited(log: AuditLog | None, who: Principal | None, action: str, *, question: str | None = None,
            detail: str = "") -> Iterator[Note]:
    """Record `action` when the block ends, with what it filled in and how it ended."""
    note = Note([], [], detail=detail)
    try:
        yield note
    except BaseException as exc:
        note.outcome = outcome_of(exc)
        raise
    finally:
        if log is not None:
            log.record(who, action, question=question, returned=note.returned, cited=note.cited,
                       outcome=note.outcome, detail=note.detail)


def recorded(action: str, detail=None, returned=None):
    """Decorator for a Service method `(self, who, *args)`: record `action` in `self.audit` with
    `detail(*args, **kwargs)` and `returned(result, *args, **kwargs)` (doc ids), however it ends."""
    def wrap(method):
        @functools.wraps(method)
        def run(self, who, *args, **kwargs):
            text = detail(*args, **kwargs) if detail is not None else ""
            with audited(getattr(self, "audit", None), who, action, detail=text) as note:
                result = method(self, who, *args, **kwargs)
                if returned is not None:
                    note.returned = list(returned(result, *args, **kwargs))
                return result
        return run
    return wrap
