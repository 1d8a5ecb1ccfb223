"""The server's small SQLite state (API keys, UI sessions, feedback, deleted documents): one file, short connections.

with sqlite_db(path) as db: db.execute(...)   # committed on success, always closed
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


DB_NAME = "chulcheo.sqlite3"


def state_db(state_dir: Path) -> Path:
    """The one SQLite file of a state directory (keys and feedback): state_dir/chulcheo.sqlite3."""
    return Path(state_dir) / DB_NAME


@contextmanager
def sqlite_db(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that commits on success, rolls back on error and is always closed."""
    db = sqlite3.connect(path, timeout=10)
    try:
        with db:
            yield db
    finally:
        db.close()


def init_db(path: Path, ddl: str) -> Path:
    """Create the file's folder and run `ddl` (CREATE TABLE IF NOT EXISTS …); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite_db(path) as db:
        db.execute(ddl)
    return path


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

    path: Path

    def __post_init__(self) -> None:
        self.path = init_db(
            self.path,
            "CREATE TABLE IF NOT EXISTS feedback (id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " created TEXT NOT NULL, user TEXT NOT NULL, rating INTEGER NOT NULL,"
            " question TEXT NOT NULL, answer TEXT NOT NULL, citations TEXT NOT NULL, comment TEXT NOT NULL)",
        )
        with sqlite_db(self.path) as db:  # columns added later: older state files gain them here
            have = {row[1] for row in db.execute("PRAGMA table_info(feedback)")}
            for column, kind in _REVIEW_COLUMNS:
                if column not in have:
                    db.execute(f"ALTER TABLE feedback ADD COLUMN {column} {kind}")

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
        with sqlite_db(self.path) as db:
            cur = db.execute(
                "INSERT INTO feedback (created, user, rating, question, answer, citations, comment, groups)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (utc_now(), user, rating, question, answer, cited, comment, groups),
            )
            return int(cur.lastrowid)

    def list(self, limit: int = 100, since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        """The newest ratings first (`since`/`until`: ISO dates or times, inclusive of since)."""
        keys = ("id", "created", "user", "rating", "question", "answer", "citations", "comment", "groups",
                "gold_answer", "gold_doc", "gold_page", "reviewed_by", "reviewed_at")
        query, args = f"SELECT {', '.join(keys)} FROM feedback WHERE 1=1", []
        if since:
            query, args = query + " AND created >= ?", [*args, since]
        if until:
            query, args = query + " AND created < ?", [*args, until]
        with sqlite_db(self.path) as db:
            rows = db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [{**dict(zip(keys, r)), "citations": json.loads(r[6]), "groups": r[8] or "*"} for r in rows]

    def get(self, feedback_id: int) -> dict[str, Any] | None:
        return next((f for f in self.list(limit=1_000_000) if f["id"] == feedback_id), None)

    def review(self, feedback_id: int, by: str, gold_answer: str | None, gold_doc: str | None,
               gold_page: int | None) -> bool:
        """Keep the right answer and/or the right passage (document, page) of a rating."""
        with sqlite_db(self.path) as db:
            cur = db.execute("UPDATE feedback SET gold_answer = ?, gold_doc = ?, gold_page = ?, reviewed_by = ?,"
                             " reviewed_at = ? WHERE id = ?",
                             (gold_answer, gold_doc, gold_page, by, utc_now(), feedback_id))
            return cur.rowcount == 1


@dataclass
class TombstoneStore:
    """Documents an admin deleted from a file that still holds other indexed documents (a JSONL
    line): a re-index reads the file again and must not bring them back."""

    path: Path

    def __post_init__(self) -> None:
        self.path = init_db(
            self.path,
            "CREATE TABLE IF NOT EXISTS deleted_docs (doc_id TEXT PRIMARY KEY, source TEXT NOT NULL,"
            " deleted TEXT NOT NULL)",
        )

    def add(self, docs: list[tuple[str, str]]) -> None:
        """Remember [(doc id, source path)] as deleted."""
        with sqlite_db(self.path) as db:
            db.executemany("INSERT OR REPLACE INTO deleted_docs VALUES (?, ?, ?)",
                           [(doc_id, source, utc_now()) for doc_id, source in docs])

    def doc_ids(self) -> set[str]:
        with sqlite_db(self.path) as db:
            return {r[0] for r in db.execute("SELECT doc_id FROM deleted_docs")}

    def forget_source(self, source: str) -> None:
        """The file itself is gone from the index: nothing of it can come back."""
        with sqlite_db(self.path) as db:
            db.execute("DELETE FROM deleted_docs WHERE source = ?", (source,))
