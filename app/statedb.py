"""Where the server's state lives: one SQLite file (the default) or a shared PostgreSQL (`state.url`).

db = StateDB.sqlite(Path("state/chulcheo.sqlite3"))     # one server process
db = StateDB.postgres("postgresql://chulcheo@db/chulcheo")  # any number of replicas, one state
db.ensure("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY, n INTEGER)")
with db.connect() as conn:                                # one transaction: committed or rolled back
    conn.execute("INSERT INTO t VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET n = excluded.n", ("a", 1))

The stores write one SQL that both engines run: `?` placeholders (turned into `%s` for
Postgres), `ON CONFLICT` upserts and `RETURNING` (SQLite 3.35+). `ensure` maps the two DDL
words that differ (`INTEGER PRIMARY KEY AUTOINCREMENT`, `REAL`). Postgres connections come from
a small bounded pool, so forty server threads never open forty connections each.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class StateDBError(RuntimeError):
    """The state database cannot be reached or used (names which one, never its password)."""


def safe_url(url: str) -> str:
    """postgresql://kim:secret@db:5432/x -> postgresql://kim:***@db:5432/x (for messages and logs)."""
    return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


class StateDB:
    """One state database; `kind` is "sqlite" or "postgres"."""

    def __init__(self, kind: str, target: str, pool_size: int = 8, connect_timeout_s: float = 10) -> None:
        self.kind = kind
        self.target = target
        self._pool: _Pool | None = None
        if kind == "postgres":
            self._pool = _Pool(target, pool_size, connect_timeout_s)

    @classmethod
    def sqlite(cls, path: Path) -> StateDB:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls("sqlite", str(path))

    @classmethod
    def postgres(cls, url: str, pool_size: int = 8) -> StateDB:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise StateDBError("state.url needs psycopg (pip install 'psycopg[binary]')") from exc
        return cls("postgres", url, pool_size)

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None for Postgres."""
        return Path(self.target) if self.kind == "sqlite" else None

    def __str__(self) -> str:
        return safe_url(self.target) if self.is_postgres else self.target

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        if self._pool is None:
            import sqlite3

            db = sqlite3.connect(self.target, timeout=10)
            try:
                with db:
                    yield db
            finally:
                db.close()
            return
        with self._pool.connection() as conn:
            yield conn

    def ensure(self, ddl: str) -> None:
        """Run a CREATE … IF NOT EXISTS statement, in this engine's words."""
        self._ddl(ddl)

    def add_column(self, table: str, column: str, kind: str) -> None:
        """Add a column a table gained in a later version, unless it is there (two replicas starting
        together both try: Postgres says IF NOT EXISTS)."""
        if self.is_postgres:
            self._ddl(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
        elif column not in self.columns(table):
            self._ddl(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def _ddl(self, ddl: str) -> None:
        """One DDL statement; in Postgres in its words and under one lock, so replicas starting
        together never race on the catalog."""
        if self.is_postgres:
            ddl = ddl.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
            ddl = ddl.replace("INTEGER PRIMARY KEY,", "BIGSERIAL PRIMARY KEY,")
            ddl = re.sub(r"\bREAL\b", "DOUBLE PRECISION", ddl)
        with self.connect() as db:
            if self.is_postgres:
                db.execute("SELECT pg_advisory_xact_lock(?)", (lock_number("chulcheo-state-ddl"),))
            db.execute(ddl)

    def session(self) -> Any:
        """A Postgres connection of its own, outside the pool (a session-level advisory lock lives
        as long as it); the caller closes it."""
        return pg_connect(self.target)

    def columns(self, table: str) -> set[str]:
        """The column names a table has now (older state files gain columns later)."""
        with self.connect() as db:
            if self.is_postgres:
                rows = db.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ?"
                                  " AND table_schema = current_schema()", (table,)).fetchall()
                return {r[0] for r in rows}
            return {r[1] for r in db.execute(f"PRAGMA table_info({table})")}

    def serialize_writes(self, db: Any, name: str) -> None:
        """Inside a connect(): one writer at a time for `name`, across processes and machines."""
        if self.is_postgres:
            db.execute("SELECT pg_advisory_xact_lock(?)", (lock_number(name),))
        else:
            db.execute("BEGIN IMMEDIATE")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()


def lock_number(name: str) -> int:
    """A stable 63-bit advisory-lock number for a name."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1


def pg_connect(url: str, connect_timeout_s: float = 10) -> Any:
    """An autocommit psycopg connection with TCP keepalives: a replica whose machine vanished
    releases its locks within ~30 s.

    Raises:
        StateDBError: it cannot connect (the URL shown without its password).
    """
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout_s),
                               keepalives=1, keepalives_idle=10, keepalives_interval=5, keepalives_count=3)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no reason given"
        raise StateDBError(f"state database {safe_url(url)}: cannot connect ({type(exc).__name__}: {reason})") from exc


class _PgConnection:
    """A psycopg connection that takes the stores' `?` SQL."""

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Any = ()) -> Any:
        return self.raw.execute(_pg_sql(sql), tuple(params) if params is not None else ())

    def executemany(self, sql: str, rows: Any) -> Any:
        with self.raw.cursor() as cur:
            cur.executemany(_pg_sql(sql), [tuple(r) for r in rows])
            return cur


def _pg_sql(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


class _Pool:
    """At most `size` open connections; a broken one is dropped and replaced on next use."""

    def __init__(self, url: str, size: int, connect_timeout_s: float) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def _open(self) -> Any:
        return pg_connect(self.url, self.connect_timeout_s)

    @contextmanager
    def connection(self) -> Iterator[_PgConnection]:
        if not self._slots.acquire(timeout=60):
            raise StateDBError(f"state database {safe_url(self.url)}: no free connection for 60 s")
        raw = None
        try:
            try:
                raw = self._idle.get_nowait()
            except queue.Empty:
                raw = self._open()
            if raw.closed or raw.broken:
                raw = self._open()
            with raw.transaction():
                yield _PgConnection(raw)
        except BaseException:
            if raw is not None and (raw.closed or raw.broken):
                raw = None  # not given back
            raise
        finally:
            if raw is not None and not self._closed:
                self._idle.put(raw)
            elif raw is not None:
                raw.close()
            self._slots.release()

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
