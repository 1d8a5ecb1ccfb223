"""The server's small state (API keys, UI sessions, feedback, deleted documents): one SQLite
file by default, or a shared PostgreSQL with `state.url` (see statedb.py), short transactions.

db = state_database(settings)          # StateDB of state.url, else of state_dir/chulcheo.sqlite3
FeedbackStore(db).add("kim", 1, "연차휴가는?", "15일입니다 [1].", [])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .statedb import StateDB

if TYPE_CHECKING:
    from .settings import Settings

DB_NAME = "chulcheo.sqlite3"


def state_db(state_dir: Path) -> Path:
    """The one SQLite file of a state directory (keys and feedback): state_dir/chulcheo.sqlite3."""
    return Path(state_dir) / DB_NAME


def state_database(settings: Settings) -> StateDB:
    """The state of these settings: Postgres at `state.url` (shared by replicas), else the SQLite file."""
    if settings.state.url:
        return StateDB.postgres(settings.state.url, pool_size=settings.state.pool_size)
    return StateDB.sqlite(state_db(settings.state_dir))


def as_state_db(where: StateDB | Path | str) -> StateDB:
    """A StateDB as given, or the SQLite file at a path."""
    return where if isinstance(where, StateDB) else StateDB.sqlite(Path(where))


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# An answer cites a few passages of at most a few KB each: 64 KB holds any real one.
MAX_CITATIONS_BYTES = 64 * 1024


# Review of a rating by an admin (the right answer and passage), and the rater's groups.
_REVIEW_COLUMNS = (("groups", "TEXT"), ("gold_answer", "TEXT"), ("gold_doc", "TEXT"), ("gold_page", "INTEGER"),
                   ("reviewed_by", "TEXT"), ("reviewed_at", "TEXT"))


@dataclass
class FeedbackStore:
    """Thumbs up/down on answers, kept with the question, the answer and its citations."""

    db: StateDB | Path

    def __post_init__(self) -> None:
        self.db = as_state_db(self.db)
        self.path = self.db.path
        self.db.ensure(
            "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " created TEXT NOT NULL, \"user\" TEXT NOT NULL, rating INTEGER NOT NULL,"
            " question TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL, comment TEXT NOT NULL)",
        )
        for column, kind in _REVIEW_COLUMNS:  # columns added later: older state files gain them here
            self.db.add_column("feedback", column, kind)

    def add(self, user: str, rating: int, question: str, answer: str,
            citations: list[dict[str, Any]], comment: str = "", groups: str = "*") -> int:
        """Store one rating (+1 / -1); returns its id.

        Raises:
            ValueError: a bad rating, or citations over MAX_CITATIONS_BYTES of JSON.
        """
        if rating not in (1, -1):
            raise ValueError(f"rating {rating!r}: must be 1 (좋아요) or -1 (싫어요)")
        cited = json.dumps(citations, ensure_ascii=False)
        if len(cited.encode()) > MAX_CITATIONS_BYTES:
            raise ValueError(f"citations: {len(cited.encode()):,} bytes of JSON; at most {MAX_CITATIONS_BYTES:,}")
        with self.db.connect() as db:
            row = db.execute(
                "INSERT INTO feedback (created, \"user\", rating, question, answer, citations, comment, groups)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (utc_now(), user, rating, question, answer, cited, comment, groups),
            ).fetchone()
            return int(row[0])

    def list(self, limit: int = 100, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        """The newest ratings first (`since`/`until`: ISO dates or times, inclusive of since)."""
        keys = ("id", "created", '"user"', "rating", "question", "answer", "citations", "comment", "groups",
                "gold_answer", "gold_doc", "gold_page", "reviewed_by", "reviewed_at")
        query, args = f"SELECT {', '.join(keys)} FROM feedback WHERE 1=1", []
        if since:
            query, args = query + " AND created >= ?", [*args, since]
        if until:
            query, args = query + " AND created < ?", [*args, until]
        with self.db.connect() as db:
            rows = db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        keys = tuple(k.strip('"') for k in keys)
        return [{**dict(zip(keys, r)), "citations": json.loads(r[6]), "groups": r[8] or "*"} for r in rows]

    def get(self, feedback_id: int) -> dict[str, Any] | None:
        return next((f for f in self.list(limit=1_000_000) if f["id"] == feedback_id), None)

    def review(self, feedback_id: int, by: str, gold_answer: str | None, gold_doc: str | None,
               gold_page: int | None) -> bool:
        """Keep the right answer and/or the right passage (document, page) of a rating."""
        with self.db.connect() as db:
            cur = db.execute("UPDATE feedback SET gold_answer = ?, gold_doc = ?, gold_page = ?, reviewed_by = ?,"
                             " reviewed_at = ? WHERE id = ?",
                             (gold_answer, gold_doc, gold_page, by, utc_now(), feedback_id))
            return cur.rowcount == 1


@dataclass
class TombstoneStore:
    """Documents an admin deleted from a file that still holds other indexed documents (a JSONL
    line): a re-index reads the file again and must not bring them back."""

    db: StateDB | Path

    def __post_init__(self) -> None:
        self.db = as_state_db(self.db)
        self.path = self.db.path
        self.db.ensure(
            "CREATE TABLE IF NOT EXISTS deleted_docs (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL,"
            " deleted TEXT NOT NULL)",
        )

    def add(self, docs: list[tuple[str, str]]) -> None:
        """Remember [(doc id, source path)] as deleted."""
        with self.db.connect() as db:
            db.executemany("INSERT INTO deleted_docs VALUES (?, ?, ?) ON CONFLICT (doc_id)"
                           " DO UPDATE SET source = excluded.source, deleted = excluded.deleted",
                           [(doc_id, source, utc_now()) for doc_id, source in docs])

    def doc_ids(self) -> set[str]:
        with self.db.connect() as db:
            return {r[0] for r in db.execute("SELECT doc_id FROM deleted_docs").fetchall()}

    def forget_source(self, source: str) -> None:
        """The file itself is gone from the index: nothing of it can come back."""
        with self.db.connect() as db:
            db.execute("DELETE FROM deleted_docs WHERE source = ?", (source,))
