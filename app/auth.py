"""API keys and who may do what: keys stored hashed in the state database, a Principal per caller.

store = KeyStore(Path("state/chulcheo.sqlite3"))
principal, key = store.create("kim", role="user", groups=["hr"])   # key shown once: "chk_1a2b3c4d_…"
store.verify(key) -> Principal(name="kim", role="user", groups=frozenset({"hr"}))
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .state import as_state_db, utc_now
from .statedb import StateDB

ROLES = ("user", "admin")
ALL_GROUPS = "*"
_NAME = re.compile(r"^[\w.@-]{1,64}$")
# Letters (any script), digits, "_" and "-": no dots, so a group can never name "." / ".." /
# ".staging" or any hidden folder when it becomes a path part (uploads/<group>/).
_GROUP = re.compile(r"^[\w-]{1,64}$")
_KEY = re.compile(r"^chk_([0-9a-f]{8})_([A-Za-z0-9_-]{20,100})$")


class AuthError(Exception):
    """No valid key (HTTP 401)."""


class PermissionDenied(Exception):
    """A valid key whose role may not do this (HTTP 403)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name, role and access groups (None = every group)."""

    name: str
    role: str
    groups: frozenset[str] | None
    key_id: str = ""

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def search_groups(self) -> list[str] | None:
        """The group filter for retrieval: None only when the caller may see every group."""
        return None if self.groups is None else sorted(self.groups)

    def can_see(self, group: str) -> bool:
        return self.groups is None or group in self.groups

    def covers(self, groups: frozenset[str] | None) -> bool:
        """Whether every group of `groups` (None = all groups) is one of this caller's."""
        if self.groups is None:
            return True
        return groups is not None and groups <= self.groups

    @property
    def groups_text(self) -> str:
        """The groups as stored beside what the caller did (audit log, ratings): "*" or "hr,public"."""
        return ALL_GROUPS if self.groups is None else ",".join(sorted(self.groups))

    def covers_text(self, groups: str) -> bool:
        """covers() for groups stored as `groups_text` ("*" = every group)."""
        return self.covers(None if groups == ALL_GROUPS else frozenset(g for g in groups.split(",") if g))

    def require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise PermissionDenied(f"{action}: needs an admin key (this key {self.name!r} has role {self.role!r})")

    def require_group(self, group: str, action: str) -> None:
        """An admin's reach ends at its groups: acting on another group is refused (HTTP 403)."""
        if not self.can_see(group):
            raise PermissionDenied(f"{action}: group {group!r} is not one of this key's groups "
                                   f"({', '.join(self.to_dict()['groups'])})")

    def require_all_groups(self, action: str) -> None:
        if self.groups is not None:
            raise PermissionDenied(f"{action}: needs a key for every group (*); this key has "
                                   f"{', '.join(sorted(self.groups))}")

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "role": self.role, "key_id": self.key_id,
                "groups": [ALL_GROUPS] if self.groups is None else sorted(self.groups)}


# `chulcheo serve --open`: the single-user demo, no keys, everything allowed.
OPEN_PRINCIPAL = Principal(name="open", role="admin", groups=None)


def parse_groups(groups: Iterable[str] | str) -> frozenset[str] | None:
    """"hr, finance" or ["hr", "finance"] -> frozenset; "*" -> None (all groups).

    Raises:
        ValueError: no group, or a name with characters other than letters, digits, _ and - (no dots).
    """
    items = groups.split(",") if isinstance(groups, str) else list(groups)
    names = {g.strip() for g in items if g.strip()}
    if not names:
        raise ValueError("groups: give at least one group (e.g. public, hr) or * for all")
    if ALL_GROUPS in names:
        return None
    bad = sorted(g for g in names if not _GROUP.match(g))
    if bad:
        raise ValueError(f"groups: {', '.join(map(repr, bad))}: use letters, digits, '_' or '-' (at most 64; no dots)")
    return frozenset(names)


def _digest(secret: str) -> str:
    # The secret is 32 random bytes, so a fast hash is enough: no dictionary to guess from.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class KeyStore:
    """API keys in the state database; only a SHA-256 of each key's secret is stored."""

    db: StateDB | Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.db = as_state_db(self.db)
        self.path = self.db.path
        _ensure_sessions(self.db)  # revoke() ends a key's sessions in the same transaction
        self.db.ensure(
            "CREATE TABLE IF NOT EXISTS api_keys (id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
            " digest TEXT NOT NULL, role TEXT NOT NULL, groups TEXT NOT NULL, created TEXT NOT NULL)",
        )

    def create(self, name: str, role: str = "user", groups: Iterable[str] | str = "public") -> tuple[Principal, str]:
        """A new key; returns (its principal, the key). The key is not stored and cannot be shown again.

        Raises:
            ValueError: bad name, role or groups, or the name is taken.
        """
        if not _NAME.match(name or ""):
            raise ValueError(f"name {name!r}: use 1-64 letters, digits, '.', '_', '@' or '-'")
        if role not in ROLES:
            raise ValueError(f"role {role!r}: must be one of {', '.join(ROLES)}")
        parsed = parse_groups(groups)
        key_id, secret = secrets.token_hex(4), secrets.token_urlsafe(32)
        stored = ALL_GROUPS if parsed is None else ",".join(sorted(parsed))
        created = utc_now()
        with self._lock, self.db.connect() as db:
            self.db.serialize_writes(db, "chulcheo-keys")  # two replicas creating one name: one wins
            if db.execute("SELECT 1 FROM api_keys WHERE name = ?", (name,)).fetchone():
                raise ValueError(f"name {name!r}: a key with this name exists (revoke it first)")
            db.execute("INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
                       (key_id, name, _digest(secret), role, stored, created))
        return Principal(name, role, parsed, key_id), f"chk_{key_id}_{secret}"

    def verify(self, key: str) -> Principal | None:
        """The principal of a valid key, else None (unknown, revoked or malformed)."""
        m = _KEY.match((key or "").strip())
        if not m:
            return None
        with self.db.connect() as db:
            row = db.execute("SELECT id, name, digest, role, groups FROM api_keys WHERE id = ?",
                             (m.group(1),)).fetchone()
        if row is None or not hmac.compare_digest(row[2], _digest(m.group(2))):
            return None
        return _principal(row)

    def by_name(self, name: str) -> Principal | None:
        with self.db.connect() as db:
            row = db.execute("SELECT id, name, digest, role, groups FROM api_keys WHERE name = ?",
                             (name,)).fetchone()
        return None if row is None else _principal(row)

    def by_id(self, key_id: str) -> Principal | None:
        """The principal of a key id while the key exists (a revoked key's id never comes back)."""
        with self.db.connect() as db:
            row = db.execute("SELECT id, name, digest, role, groups FROM api_keys WHERE id = ?",
                             (key_id,)).fetchone()
        return None if row is None else _principal(row)

    def find(self, name_or_id: str) -> Principal | None:
        """A key by name, else by key id."""
        return self.by_name(name_or_id) or self.by_id(name_or_id)

    def list(self) -> list[dict[str, object]]:
        """Every key without its secret: [{"key_id", "name", "role", "groups", "created"}]."""
        with self.db.connect() as db:
            rows = db.execute("SELECT id, name, digest, role, groups, created FROM api_keys ORDER BY created, name").fetchall()
        return [{**_principal(r).to_dict(), "created": r[5]} for r in rows]

    def revoke(self, name_or_id: str) -> bool:
        """Delete a key by name or key id, and every web-UI session opened with it; False if there was none."""
        with self._lock, self.db.connect() as db:
            ids = [r[0] for r in db.execute("SELECT id FROM api_keys WHERE id = ? OR name = ?",
                                            (name_or_id, name_or_id)).fetchall()]
            db.execute("DELETE FROM api_keys WHERE id = ? OR name = ?", (name_or_id, name_or_id))
            if ids:
                db.executemany("DELETE FROM ui_sessions WHERE key_id = ?", [(i,) for i in ids])
            return bool(ids)

    def count(self) -> int:
        with self.db.connect() as db:
            return db.execute("SELECT COUNT(*) FROM api_keys").fetchone()[0]


def _ensure_sessions(db: StateDB) -> None:
    db.ensure("CREATE TABLE IF NOT EXISTS ui_sessions (digest TEXT PRIMARY KEY, key_id TEXT NOT NULL,"
              " created TEXT NOT NULL, expires REAL NOT NULL)")


def _principal(row) -> Principal:
    groups = None if row[4] == ALL_GROUPS else frozenset(g for g in row[4].split(",") if g)
    return Principal(name=row[1], role=row[3], groups=groups, key_id=row[0])


def bearer_key(header: str | None) -> str | None:
    """"Bearer chk_…" -> "chk_…"; None for a missing or other scheme."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


@dataclass
class SessionStore:
    """Web-UI sessions: a random cookie token bound to the key that logged in (stored hashed).

    A session dies with its key: revoking the key deletes its sessions, and a new key issued
    under the same name has another key id, so an old cookie never comes back to life.
    sessions.open("1a2b3c4d", hours=12) -> "Xy…" (the cookie); sessions.handle("Xy…") -> "s_9f…";
    sessions.key_id("s_9f…") -> "1a2b3c4d"
    """

    db: StateDB | Path

    def __post_init__(self) -> None:
        self.db = as_state_db(self.db)
        self.path = self.db.path
        _ensure_sessions(self.db)

    def open(self, key_id: str, hours: float) -> str:
        token = secrets.token_urlsafe(32)
        with self.db.connect() as db:
            db.execute("DELETE FROM ui_sessions WHERE expires < ?", (time.time(),))
            db.execute("INSERT INTO ui_sessions VALUES (?, ?, ?, ?)",
                       (_digest(token), key_id, utc_now(), time.time() + hours * 3600))
        return token

    def handle(self, token: str | None) -> str | None:
        """The server-side handle of a live session token ("s_<sha256>"), else None.

        The handle is what the UI's handlers see as the user; it never reveals the cookie.
        """
        if not token or len(token) > 200:
            return None
        digest = _digest(token)
        return f"s_{digest}" if self._key_id(digest) else None

    def key_id(self, handle: str | None) -> str | None:
        """The key id behind a session handle while the session lives, else None."""
        if not handle or not handle.startswith("s_"):
            return None
        return self._key_id(handle[2:])

    def _key_id(self, digest: str) -> str | None:
        with self.db.connect() as db:
            row = db.execute("SELECT key_id, expires FROM ui_sessions WHERE digest = ?", (digest,)).fetchone()
        return row[0] if row is not None and row[1] >= time.time() else None

    def close(self, token: str | None) -> None:
        if token:
            with self.db.connect() as db:
                db.execute("DELETE FROM ui_sessions WHERE digest = ?", (_digest(token),))
