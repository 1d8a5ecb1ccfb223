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

    def add(self, user: str, rating: int, question: str, answer: str,
            citations: list[dict[str, Any]], comment: str = "") -> int:
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
                "INSERT INTO feedback (created, user, rating, question, answer, citations, comment)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (utc_now(), user, rating, question, answer, cited, comment),
            )
            return int(cur.lastrowid)

    def list(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ratings first."""
        with sqlite_db(self.path) as db:
            rows = db.execute(
                "SELECT id, created, user, rating, question, answer, citations, comment FROM feedback"
                " ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        keys = ("id", "created", "user", "rating", "question", "answer", "citations", "comment")
        return [{**dict(zip(keys, r)), "citations": json.loads(r[6])} for r in rows]


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
