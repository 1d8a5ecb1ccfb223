"""What the server does for a caller, shared by the HTTP API and the web UI.

service = Service.from_settings(Settings())          # keys required
service = Service.from_settings(Settings(), open_mode=True)   # `serve --open`: no keys
who = service.authenticate("chk_…")                   # -> Principal, or AuthError
service.ask(who, "연차휴가는 며칠인가요?")             # -> Answer, only from who's groups
service.upload(who, "규정.txt", data, group="hr")      # -> Job (admin only)
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
import threading
import time
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ingest.errors import LoadError
from ingest.load import SUPPORTED_EXTENSIONS, load_file
from ingest.manifest import DocEntry
from retrieval.retriever import SearchFilters
from retrieval.types import Hit

from grounding import Answer, CheckCancelled, Grounded, Passage

from .answering import StreamEvent, final_answer
from .auth import OPEN_PRINCIPAL, AuthError, KeyStore, PermissionDenied, Principal, SessionStore, parse_groups
from .jobs import STATUSES, Job, JobQueue
from .limits import RateLimited, RateLimiter
from .pipeline import MB, Pipeline
from .schemas import doc_to_dict, public_id
from .settings import Settings
from .state import FeedbackStore, TombstoneStore, state_db

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


class UploadRejected(ValueError):
    """An upload that is refused before anything is stored; `status` is its HTTP code."""

    def __init__(self, filename: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename, self.reason, self.status = filename, reason, status


class ServerBusy(RuntimeError):
    """Every answer slot stayed taken for the whole wait (HTTP 503; retry later)."""


class AnswerTimeout(TimeoutError):
    """An answer took longer than `server.ask_timeout_s` and was stopped (HTTP 504)."""


class NotFound(LookupError):
    """A named document or job that does not exist (HTTP 404)."""


class RequestTooLarge(ValueError):
    """A request whose content is over a size limit (HTTP 413)."""


class ClientGone(RuntimeError):
    """The caller went away; the work done for it was stopped (never reaches a client)."""


def safe_filename(name: str, max_bytes: int = 200) -> str:
    """The last path part of an uploaded name, made safe to store: "../../etc/규정.txt" -> "규정.txt".

    Control and path characters become "_"; a name over `max_bytes` UTF-8 bytes is shortened and
    marked with a hash of the whole name ("아주 긴 … 이름~3f9a0c1d2e.pdf").

    Raises:
        ValueError: nothing usable is left (e.g. "..", "", "\\x00").
    """
    base = (name or "").encode("utf-8", "replace").decode()  # lone surrogates (bad encodings) -> "?"
    base = unicodedata.normalize("NFC", base).replace("\\", "/").split("/")[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    if not base or set(base) <= {"_", "."}:
        raise ValueError(f"file name {name!r}: nothing usable after removing path and control characters")
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    # File systems count bytes (255 per name on ext4), and a Hangul syllable is 3 UTF-8 bytes:
    # cut the stem on a character boundary, keeping the extension (it decides how the file is read).
    # The cut name carries a hash of the whole name, so two long names that differ only past the
    # cut never become one stored document.
    if len(base.encode()) > max_bytes:
        keep_ext = bool(dot) and len(ext.encode()) <= 16
        tail = f"~{hashlib.sha256(base.encode()).hexdigest()[:10]}" + (f".{ext}" if keep_ext else "")
        head = stem if keep_ext else base
        base = head.encode()[: max_bytes - len(tail.encode())].decode(errors="ignore") + tail
    return base


@dataclass
class Service:
    """Everything `chulcheo serve` exposes, with access checks; the API and UI are thin over it."""

    pipeline: Pipeline
    keys: KeyStore | None  # None: open mode, no keys
    feedback: FeedbackStore
    jobs: JobQueue
    sessions: SessionStore | None = None  # web-UI logins; None in open mode
    tombstones: TombstoneStore | None = None  # documents deleted from files that stay indexed

    def __post_init__(self) -> None:
        s = self.settings.server
        # llama.cpp answers one request at a time; the rest wait here instead of inside the model.
        self._answer_slots = threading.BoundedSemaphore(s.max_concurrent_answers)
        self._check_slots = threading.BoundedSemaphore(s.max_concurrent_checks)
        self._rate = RateLimiter(s.ask_per_minute, s.ask_burst)
        self._feedback_rate = RateLimiter(s.feedback_per_minute, s.feedback_burst)
        # one upload or delete at a time decides which stored file is which document's
        self._files_lock = threading.Lock()
        self._warming = threading.Event()  # set while warm_up runs
        self._model_error: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, open_mode: bool = False, pipeline: Pipeline | None = None) -> Service:
        db = state_db(settings.state_dir)  # the stores create the folder
        service = cls(
            pipeline=pipeline or Pipeline(settings),
            keys=None if open_mode else KeyStore(db),
            feedback=FeedbackStore(db),
            jobs=JobQueue(),
            sessions=None if open_mode else SessionStore(db),
            tombstones=TombstoneStore(db),
        )
        service.sweep_uploads()
        return service

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    @property
    def open_mode(self) -> bool:
        return self.keys is None

    @property
    def upload_dir(self) -> Path:
        return Path(self.settings.state_dir) / "uploads"

    # ------------------------------------------------------------------ who
    def authenticate(self, key: str | None) -> Principal:
        """The caller of an API key; in open mode everyone is the demo admin.

        Raises:
            AuthError: no key, or not a valid one.
        """
        if self.keys is None:
            return OPEN_PRINCIPAL
        if not key:
            raise AuthError("missing API key: send `Authorization: Bearer <key>` (create one with `chulcheo keys create`)")
        principal = self.keys.verify(key)
        if principal is None:
            raise AuthError("invalid API key (unknown, revoked or mistyped)")
        return principal

    def login(self, name: str, key: str) -> str | None:
        """The web UI's login: a new session token (the cookie) when name and key belong together."""
        if self.keys is None or self.sessions is None:
            return None
        principal = self.keys.verify(key)
        if principal is None or principal.name != name:
            return None
        return self.sessions.open(principal.key_id, self.settings.server.session_hours)

    def ui_principal(self, handle: str | None) -> Principal:
        """The caller of a web-UI session handle (see SessionStore.handle); open mode: the demo admin.

        Raises:
            AuthError: no session, or it ended (logged out, expired, or its key was revoked).
        """
        if self.keys is None or self.sessions is None:
            return OPEN_PRINCIPAL
        key_id = self.sessions.key_id(handle)
        principal = self.keys.by_id(key_id) if key_id else None
        if principal is None:
            raise AuthError("the session has ended (logged out, expired or its key was revoked); log in again")
        return principal

    # ------------------------------------------------------------------ reading
    def search(self, who: Principal, query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        """Hits from the caller's groups only: the filter applies inside each leg, before ranking."""
        if not query.strip():
            raise ValueError("query: empty")
        k = min(k or self.settings.retrieval.k, self.settings.server.search_k_max)
        groups = who.search_groups()
        filters = SearchFilters(groups=set(groups)) if groups is not None else None
        return self.pipeline.search(query, k, mode=mode, filters=filters)

    def ask(self, who: Principal, question: str, history=None) -> Answer:
        return final_answer(self.stream(who, question, history))

    def stream(self, who: Principal, question: str, history=None, *, tokens: bool = False,
               cancelled: Callable[[], bool] | None = None) -> Iterator[StreamEvent]:
        """Stream events of one answer from the caller's groups; answers wait for a free model slot.

        The slot is held only while the stream is consumed: closing the iterator (a client that
        went away) stops the model and frees it. `cancelled()` is polled while waiting for a slot.
        Every answer, streamed or not, is stopped after `server.ask_timeout_s`: the model's
        tokens are watched even when the caller does not want them.
        """
        s = self.settings.server
        self._take(self._rate, who, f"more than {s.ask_burst} questions at once or {s.ask_per_minute:g} a minute")
        self._acquire(self._answer_slots, s.answer_wait_s, cancelled,
                      f"all {s.max_concurrent_answers} answer slot(s) stayed busy for {s.answer_wait_s:g} s; retry later")
        try:
            deadline = time.monotonic() + s.ask_timeout_s
            for event in self.pipeline.stream(question, history, who.search_groups(), tokens=True):
                if event.kind != "token" or tokens:
                    yield event
                if event.kind != "answer" and time.monotonic() > deadline:
                    # leaving the loop closes the stream, which stops the model and frees its lock
                    raise AnswerTimeout(f"the answer took longer than {s.ask_timeout_s:g} s and was stopped; "
                                        "ask a narrower question or raise server.ask_timeout_s")
        finally:
            self._answer_slots.release()

    def _take(self, limiter: RateLimiter, who: Principal, what: str) -> None:
        retry = limiter.take(who.key_id or who.name)
        if retry:
            raise RateLimited(f"key {who.name!r}: {what}; retry in {max(1, round(retry))} s", retry)

    @staticmethod
    def _acquire(slots: threading.BoundedSemaphore, wait_s: float, cancelled: Callable[[], bool] | None,
                 busy: str) -> None:
        """Take a slot, waiting at most `wait_s`; give up early when the caller went away."""
        deadline = time.monotonic() + wait_s
        while not slots.acquire(timeout=min(0.25, max(0.0, deadline - time.monotonic()))):
            if cancelled is not None and cancelled():
                raise ClientGone("the client went away while waiting for a slot")
            if time.monotonic() >= deadline:
                raise ServerBusy(busy)

    def verify(self, who: Principal, answer: str, passages: Sequence[Passage], question: str = "",
               cancelled: Callable[[], bool] | None = None) -> Grounded:
        """Check any text against given passages, metered like a question.

        Raises:
            RateLimited: the key's question budget is spent (verifies share it with asks).
            RequestTooLarge: answer + passages over `server.verify_max_chars`.
            ServerBusy: every check slot stayed busy.
            AnswerTimeout: the check ran past `server.ask_timeout_s` and was stopped.
        """
        s = self.settings.server
        size = len(answer) + len(question) + sum(len(p.text) + len(p.context) for p in passages)
        if size > s.verify_max_chars:
            raise RequestTooLarge(f"verify: {size:,} characters of answer and passages; the limit is "
                                  f"{s.verify_max_chars:,} (server.verify_max_chars)")
        self._take(self._rate, who, f"more than {s.ask_burst} checks or questions at once or "
                                    f"{s.ask_per_minute:g} a minute")
        self._acquire(self._check_slots, s.answer_wait_s, cancelled,
                      f"all {s.max_concurrent_checks} check slot(s) stayed busy; retry later")
        deadline = time.monotonic() + s.ask_timeout_s

        def should_stop() -> bool:
            return (cancelled is not None and cancelled()) or time.monotonic() > deadline

        try:
            return self.pipeline.verify(answer, passages, question, should_stop=should_stop)
        except CheckCancelled as exc:
            if cancelled is not None and cancelled():
                raise ClientGone("the client went away during the check") from exc
            raise AnswerTimeout(f"the check took longer than {s.ask_timeout_s:g} s and was stopped") from exc
        finally:
            self._check_slots.release()

    def documents(self, who: Principal) -> list[dict[str, Any]]:
        """Indexed documents the caller may see, plus uploads still queued, indexing or failed."""
        rows = [{**doc_to_dict(d), "status": "indexed", "error": None}
                for d in self.pipeline.documents() if who.can_see(d.group)]
        indexed = {r["source"] for r in rows}
        seen: set[str] = set()
        for job in self.jobs.list():  # newest first: the latest upload of a path decides its status
            path = job.detail.get("path")
            if job.kind != "upload" or not path or path in seen or not who.can_see(job.detail.get("group", "")):
                continue
            seen.add(path)
            if job.status in ("done", "failed") and path in indexed:
                continue  # the indexed row says it (a failed re-upload left the old version indexed)
            status = {"queued": "queued", "running": "indexing", "failed": "failed"}.get(job.status)
            if status is None:
                continue
            rows.append({"doc_id": None, "source": path, "title": Path(path).stem, "group": job.detail["group"],
                         "sha256": None, "chunks": 0, "pages": [], "ingested_at": None, "status": status,
                         "error": job.error, "job": job.id})
        return rows

    def stats(self, who: Principal = OPEN_PRINCIPAL) -> dict[str, Any]:
        """Index size within the caller's groups; the index folder only for an every-group admin."""
        docs = [d for d in self.pipeline.documents() if who.can_see(d.group)]
        groups: dict[str, int] = {}
        for d in docs:
            groups[d.group] = groups.get(d.group, 0) + 1
        jobs = self.visible_jobs(who)
        return {
            "documents": len(docs),
            "chunks": sum(len(d.chunk_ids) for d in docs),
            "groups": dict(sorted(groups.items())),
            "index_dir": str(self.pipeline.index_dir) if who.groups is None else None,
            "embedding_model": self.settings.embedding.model,
            "generation_model": self.settings.generation.model,
            "jobs": {status: sum(j.status == status for j in jobs) for status in STATUSES},
        }

    def warm_up(self) -> None:
        """Load the index, the embedding model, the LLM and Kiwi now (`serve` runs this in the
        background at start), so the first question does not wait ~30 s for them."""
        self._warming.set()
        try:
            try:  # one query loads the index, the embedding model and the BM25 tokenizer (Kiwi)
                self.pipeline.search("안녕하세요", 1)
            except Exception as exc:  # no index yet is normal: admins upload into it later
                log.warning("warm-up: index not loaded: %s", exc)
            try:
                self.pipeline.warm_up_prompt()  # loads the LLM and caches the prompt's fixed head
                self.pipeline.checker  # noqa: B018 - loads Kiwi and the checker
                self._model_error = None
            except Exception as exc:  # readyz reports it; questions get the same error
                self._model_error = str(exc)
                log.error("warm-up: the LLM could not be loaded: %s", exc)
        finally:
            self._warming.clear()

    def start_warm_up(self) -> threading.Thread:
        """warm_up() on a background thread; /readyz says "loading models" from this call on."""
        self._warming.set()
        thread = threading.Thread(target=self.warm_up, name="chulcheo-warm-up", daemon=True)
        thread.start()
        return thread

    def ready(self) -> tuple[bool, str]:
        """Can questions be answered: models loaded, and an index that loads with the configured model."""
        if self._warming.is_set():
            return False, "loading models"
        if self._model_error:
            return False, self._model_error
        try:
            self.pipeline.retriever()
        except Exception as exc:  # readiness reports any reason; it never raises
            return False, str(exc)
        return True, "ok"

    def job(self, who: Principal, job_id: str) -> Job:
        who.require_admin("jobs")
        job = self.jobs.get(job_id)
        if job is None or not self._may_see_job(who, job):
            raise NotFound(f"job {job_id!r}: no such job (jobs are kept in memory until the server restarts)")
        return job

    def visible_jobs(self, who: Principal) -> list[Job]:
        """Jobs about the caller's groups only, newest first."""
        return [j for j in self.jobs.list() if self._may_see_job(who, j)]

    @staticmethod
    def _may_see_job(who: Principal, job: Job) -> bool:
        groups = job.detail.get("groups") or [job.detail.get("group", "")]
        return who.groups is None or ("*" not in groups and all(who.can_see(g) for g in groups))

    def add_feedback(self, who: Principal, rating: int, question: str, answer: str,
                     citations: list[dict[str, Any]], comment: str = "") -> int:
        s = self.settings.server
        self._take(self._feedback_rate, who, f"more than {s.feedback_burst} ratings at once or "
                                             f"{s.feedback_per_minute:g} a minute")
        return self.feedback.add(who.name, rating, question, answer, citations, comment)

    # ------------------------------------------------------------------ keys (admin)
    def list_keys(self, who: Principal) -> list[dict[str, Any]]:
        """Keys whose groups all lie within the caller's (never their secrets)."""
        who.require_admin("keys")
        if self.keys is None:
            return []
        return [k for k in self.keys.list() if who.covers(_groups_of(k))]

    def create_key(self, who: Principal, name: str, role: str, groups: Sequence[str] | str) -> tuple[Principal, str]:
        """A new key, never reaching beyond the creating admin's own groups.

        Raises:
            PermissionDenied: a group (or *) the caller does not have.
            ValueError: bad name, role or groups; open mode.
        """
        who.require_admin("create keys")
        if self.keys is None:
            raise ValueError("keys: the server runs with --open (no keys); restart it without --open to use keys")
        wanted = parse_groups(groups)
        if not who.covers(wanted):
            shown = "*" if wanted is None else ", ".join(sorted(wanted - (who.groups or frozenset())))
            raise PermissionDenied(f"create key {name!r}: groups {shown} are beyond this key's groups "
                                   f"({', '.join(who.to_dict()['groups'])})")
        return self.keys.create(name, role, groups)

    def revoke_key(self, who: Principal, name_or_id: str) -> str:
        """Revoke a key within the caller's reach (its groups all among the caller's); its UI sessions end too.

        Raises:
            NotFound: no such key, or one beyond the caller's groups (not told apart).
        """
        who.require_admin("revoke keys")
        target = self.keys.find(name_or_id) if self.keys is not None else None
        if target is None or not who.covers(target.groups) or not self.keys.revoke(target.key_id):
            raise NotFound(f"key {name_or_id!r}: no such key within this key's groups")
        return target.name

    # ------------------------------------------------------------------ writing (admin)
    def upload(self, who: Principal, filename: str, data: BinaryIO | bytes, group: str = "public") -> Job:
        """Check and store one uploaded file, then index it in the background.

        Each upload is stored under its own folder (uploads/<group>/<version>/<name>), so a
        re-upload of a name never overwrites the version that is indexed: the job indexes the new
        file and drops the old version in the same index generation, and only then removes the
        old file. Refused with UploadRejected before anything is stored when the group or type is
        not allowed, the file is too large, or it cannot be read as that type.
        """
        who.require_admin("upload")
        s = self.settings.server
        try:
            name = safe_filename(filename)
            groups = parse_groups(group)
        except ValueError as exc:
            raise UploadRejected(filename or "(no name)", str(exc), 422) from exc
        if groups is None or len(groups) != 1:
            raise UploadRejected(name, f"group {group!r}: give exactly one access group", 422)
        (group,) = groups
        who.require_group(group, f"upload {name}")
        ext = Path(name).suffix.lower()
        allowed = sorted(set(s.upload_types) & set(SUPPORTED_EXTENSIONS))
        if ext not in allowed:
            shown = f"'{ext}'" if ext else "(none)"
            raise UploadRejected(name, f"file type {shown} is not accepted (accepted: {', '.join(allowed)})", 415)
        staging = self.upload_dir / STAGING / uuid.uuid4().hex
        staging.mkdir(parents=True)
        try:
            tmp = staging / name
            self._write_limited(tmp, data, int(s.max_upload_mb * MB), name)
            try:  # read it now, so a bad file is refused with its reason and never stored
                load_file(tmp, group, limits=self.pipeline.load_limits())
            except LoadError as exc:
                raise UploadRejected(name, exc.reason, 422) from exc
            target = self.upload_dir / group / uuid.uuid4().hex[:16] / name
            target.parent.mkdir(parents=True)
            tmp.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        detail = {"path": str(target.resolve()), "group": group, "filename": name}
        return self.jobs.submit("upload", lambda progress: self._index_upload(target, group, progress), detail)

    def _index_upload(self, path: Path, group: str, progress) -> dict[str, Any]:
        path = path.resolve()
        with self._files_lock:
            older = [d for d in self.pipeline.documents()
                     if self._upload_key(d.source) == (group, path.name) and d.source != str(path)]
        try:
            report = self.pipeline.ingest([path], group, progress=progress, replace=[d.doc_id for d in older])
        except Exception:
            _remove_upload(path, self.upload_dir)  # not indexed: do not keep it; the old version stays
            raise
        if report.failed:
            _remove_upload(path, self.upload_dir)
            raise LoadError(path, "; ".join(f["error"] for f in report.failed))
        with self._files_lock:  # the old version left the index in the same generation: now its file goes
            live = {d.source for d in self.pipeline.documents()}
            for source in {d.source for d in older} - live:
                _remove_upload(Path(source), self.upload_dir)
        return report.to_dict()

    def _upload_key(self, source: str) -> tuple[str, str] | None:
        """(group, file name) of a stored upload: the identity a re-upload replaces; None elsewhere."""
        try:
            parts = Path(source).relative_to(self.upload_dir.resolve()).parts
        except ValueError:
            return None
        if len(parts) in (2, 3) and parts[0] != STAGING:  # <group>/<name> (older layout) or <group>/<version>/<name>
            return parts[0], parts[-1]
        return None

    def sweep_uploads(self) -> list[Path]:
        """Remove stored uploads that no indexed document comes from (left by a crash between
        storing and indexing, or between replacing a version and removing its file)."""
        root = self.upload_dir
        if not root.is_dir():
            return []
        shutil.rmtree(root / STAGING, ignore_errors=True)
        try:
            live = {d.source for d in self.pipeline.documents()}
        except Exception as exc:  # an unreadable index: keep every file
            log.warning("uploads not swept: %s", exc)
            return []
        removed = []
        for path in sorted(root.rglob("*")):
            if path.is_file() and self._upload_key(str(path.resolve())) and str(path.resolve()) not in live:
                _remove_upload(path, root)
                removed.append(path)
        if removed:
            log.warning("removed %d stored upload(s) that were never indexed or were replaced", len(removed))
        return removed

    @staticmethod
    def _write_limited(path: Path, data: BinaryIO | bytes, limit: int, name: str) -> None:
        if isinstance(data, bytes | bytearray):
            if len(data) > limit:
                raise UploadRejected(name, f"file is larger than the upload limit of {limit // MB} MB", 413)
            if not data:
                raise UploadRejected(name, "file is empty (0 bytes)", 422)
            path.write_bytes(data)
            return
        written = 0
        with path.open("wb") as out:
            while chunk := data.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise UploadRejected(name, f"file is larger than the upload limit of {limit // MB} MB", 413)
                out.write(chunk)
        if written == 0:
            raise UploadRejected(name, "file is empty (0 bytes)", 422)

    def find_documents(self, who: Principal, specs: Sequence[str]) -> list[DocEntry]:
        """Indexed documents within the caller's groups named by opaque id, internal id or file path.

        Raises:
            NotFound: a spec that names no document the caller may see (another group's too).
        """
        docs = [d for d in self.pipeline.documents() if who.can_see(d.group)]
        found: dict[str, DocEntry] = {}
        missing = []
        for spec in specs:
            resolved = str(Path(spec).resolve()) if spec.startswith("/") else None
            matched = [d for d in docs if spec in (d.doc_id, public_id(d.doc_id)) or d.source == resolved]
            found.update((d.doc_id, d) for d in matched)
            if not matched:
                missing.append(spec)
        if missing:
            raise NotFound(f"document {', '.join(map(repr, missing))}: not indexed (see GET /v1/documents)")
        return list(found.values())

    def delete(self, who: Principal, specs: Sequence[str]) -> list[DocEntry]:
        """Remove documents (by opaque id, id or path) within the caller's groups; returns them.

        One document of a multi-document file (a JSONL line) is remembered as deleted, so a
        re-index that reads the file again does not bring it back; a stored upload is removed
        only when no document of it is left.

        Raises:
            NotFound: a spec names no document the caller may see.
        """
        who.require_admin("delete")
        docs = self.find_documents(who, specs)
        with self._files_lock:
            # remembered first: if the process dies before the index changes, the next re-index
            # finishes the delete instead of forgetting it
            if self.tombstones is not None:
                self.tombstones.add([(d.doc_id, d.source) for d in docs])
            deleted, _ = self.pipeline.delete([d.doc_id for d in docs])
            live = {d.source for d in self.pipeline.documents()}
            for source in {d.source for d in docs} - live:
                if self._upload_key(source):
                    _remove_upload(Path(source), self.upload_dir)
                if self.tombstones is not None:
                    self.tombstones.forget_source(source)
        gone = set(deleted)
        return [d for d in docs if d.doc_id in gone]

    def reindex(self, who: Principal) -> Job:
        """Read every document's file within the caller's groups again: changed ones are
        re-embedded, vanished ones dropped, deleted ones stay deleted."""
        who.require_admin("reindex")
        detail = {"groups": ["*"] if who.groups is None else sorted(who.groups)}
        return self.jobs.submit("reindex", lambda progress: self._reindex(progress, who), detail)

    def _reindex(self, progress, who: Principal = OPEN_PRINCIPAL) -> dict[str, Any]:
        by_group: dict[str, set[Path]] = {}
        gone: list[str] = []
        for d in self.pipeline.documents():
            if not who.can_see(d.group):
                continue
            source = Path(d.source)
            if source.is_file():
                by_group.setdefault(d.group, set()).add(source)
            else:
                gone.append(d.doc_id)
        exclude = self.tombstones.doc_ids() if self.tombstones is not None else set()
        totals: dict[str, Any] = {"added": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": [], "chunks": 0}
        for group, paths in sorted(by_group.items()):
            report = self.pipeline.ingest(sorted(paths), group, progress=progress, exclude=exclude).to_dict()
            for key in ("added", "updated", "unchanged", "deleted"):
                totals[key] += report[key]
            totals["failed"] += report["failed"]
        if gone:
            deleted, _ = self.pipeline.delete(gone)
            totals["deleted"] += len(deleted)
        totals["chunks"] = sum(len(d.chunk_ids) for d in self.pipeline.documents() if who.can_see(d.group))
        return totals


STAGING = ".staging"


def _remove_upload(path: Path, root: Path) -> None:
    """Delete a stored upload and its version folder when that is left empty (never above `root`)."""
    path.unlink(missing_ok=True)
    folder = path.parent
    if folder != root and folder.parent != root and folder.is_relative_to(root):
        with contextlib.suppress(OSError):
            folder.rmdir()


def _groups_of(key: dict[str, Any]) -> frozenset[str] | None:
    groups = key["groups"]
    return None if "*" in groups else frozenset(groups)
