"""What the server does for a caller, shared by the HTTP API and the web UI.

service = Service.from_settings(Settings())          # keys required
service = Service.from_settings(Settings(), open_mode=True)   # `serve --open`: no keys
who = service.authenticate("chk_…")                   # -> Principal, or AuthError
service.ask(who, "연차휴가는 며칠인가요?")             # -> Answer, only from who's groups
service.upload(who, "규정.txt", data, group="hr")      # -> Job (admin only)
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ingest.errors import LoadError
from ingest.load import SUPPORTED_EXTENSIONS, load_file
from retrieval.retriever import SearchFilters
from retrieval.types import Hit

from grounding import Answer, Grounded, Passage

from .answering import StreamEvent, final_answer
from .auth import OPEN_PRINCIPAL, AuthError, KeyStore, Principal, parse_groups
from .jobs import Job, JobQueue
from .limits import RateLimited, RateLimiter
from .pipeline import MB, Pipeline
from .schemas import doc_to_dict
from .settings import Settings
from .state import FeedbackStore, state_db

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


def safe_filename(name: str, max_bytes: int = 200) -> str:
    """The last path part of an uploaded name, made safe to store: "../../etc/규정.txt" -> "규정.txt".

    Control and path characters become "_"; a name over `max_bytes` UTF-8 bytes is shortened.

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
    if len(base.encode()) > max_bytes:
        keep_ext = bool(dot) and len(ext.encode()) <= 16
        tail = f".{ext}" if keep_ext else ""
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

    def __post_init__(self) -> None:
        s = self.settings.server
        # llama.cpp answers one request at a time; the rest wait here instead of inside the model.
        self._answer_slots = threading.BoundedSemaphore(s.max_concurrent_answers)
        self._rate = RateLimiter(s.ask_per_minute, s.ask_burst)
        self._warming = threading.Event()  # set while warm_up runs
        self._model_error: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, open_mode: bool = False, pipeline: Pipeline | None = None) -> Service:
        db = state_db(settings.state_dir)  # the stores create the folder
        return cls(
            pipeline=pipeline or Pipeline(settings),
            keys=None if open_mode else KeyStore(db),
            feedback=FeedbackStore(db),
            jobs=JobQueue(),
        )

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

    def login(self, name: str, key: str) -> bool:
        """The web UI's login: user name and API key must belong together."""
        if self.keys is None:
            return True
        principal = self.keys.verify(key)
        return principal is not None and principal.name == name

    def principal_by_name(self, name: str | None) -> Principal:
        """The principal of a logged-in UI user (the key may have been revoked since)."""
        if self.keys is None:
            return OPEN_PRINCIPAL
        principal = self.keys.by_name(name or "")
        if principal is None:
            raise AuthError(f"user {name!r}: no such key (revoked?); log in again")
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

    def stream(self, who: Principal, question: str, history=None, *, tokens: bool = False) -> Iterator[StreamEvent]:
        """Stream events of one answer from the caller's groups; answers wait for a free model slot."""
        s = self.settings.server
        retry = self._rate.take(who.key_id or who.name)
        if retry:
            raise RateLimited(f"key {who.name!r}: more than {s.ask_burst} questions at once or {s.ask_per_minute:g} "
                              f"a minute; retry in {retry:.0f} s", retry)
        if not self._answer_slots.acquire(timeout=s.answer_wait_s):
            raise ServerBusy(f"all {s.max_concurrent_answers} answer slot(s) stayed busy for {s.answer_wait_s:g} s; retry later")
        try:
            deadline = time.monotonic() + s.ask_timeout_s
            for event in self.pipeline.stream(question, history, who.search_groups(), tokens=tokens):
                yield event
                if event.kind != "answer" and time.monotonic() > deadline:
                    # leaving the loop closes the stream, which stops the model and frees its lock
                    raise AnswerTimeout(f"the answer took longer than {s.ask_timeout_s:g} s and was stopped; "
                                        "ask a narrower question or raise server.ask_timeout_s")
        finally:
            self._answer_slots.release()

    def verify(self, answer: str, passages: Sequence[Passage], question: str = "") -> Grounded:
        return self.pipeline.verify(answer, passages, question)

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

    def stats(self) -> dict[str, Any]:
        docs = self.pipeline.documents()
        groups: dict[str, int] = {}
        for d in docs:
            groups[d.group] = groups.get(d.group, 0) + 1
        return {
            "documents": len(docs),
            "chunks": sum(len(d.chunk_ids) for d in docs),
            "groups": dict(sorted(groups.items())),
            "index_dir": str(self.pipeline.index_dir),
            "embedding_model": self.settings.embedding.model,
            "generation_model": self.settings.generation.model,
            "jobs": self.jobs.counts(),
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
        if job is None:
            raise NotFound(f"job {job_id!r}: no such job (jobs are kept in memory until the server restarts)")
        return job

    def add_feedback(self, who: Principal, rating: int, question: str, answer: str,
                     citations: list[dict[str, Any]], comment: str = "") -> int:
        return self.feedback.add(who.name, rating, question, answer, citations, comment)

    # ------------------------------------------------------------------ writing (admin)
    def upload(self, who: Principal, filename: str, data: BinaryIO | bytes, group: str = "public") -> Job:
        """Check and store one uploaded file, then index it in the background.

        Refused with UploadRejected before anything is stored when the type is not allowed,
        the file is too large, or it cannot be read as that type (no text, corrupt, encrypted).
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
        ext = Path(name).suffix.lower()
        allowed = sorted(set(s.upload_types) & set(SUPPORTED_EXTENSIONS))
        if ext not in allowed:
            shown = f"'{ext}'" if ext else "(none)"
            raise UploadRejected(name, f"file type {shown} is not accepted (accepted: {', '.join(allowed)})", 415)
        staging = self.upload_dir / ".staging" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        try:
            tmp = staging / name
            self._write_limited(tmp, data, int(s.max_upload_mb * MB), name)
            try:  # read it now, so a bad file is refused with its reason and never stored
                load_file(tmp, group, limits=self.pipeline.load_limits())
            except LoadError as exc:
                raise UploadRejected(name, exc.reason, 422) from exc
            target = self.upload_dir / group / name
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        detail = {"path": str(target.resolve()), "group": group, "filename": name}
        return self.jobs.submit("upload", lambda progress: self._index_upload(target, group, progress), detail)

    def _index_upload(self, path: Path, group: str, progress) -> dict[str, Any]:
        try:
            report = self.pipeline.ingest([path], group, progress=progress)
        except Exception:
            path.unlink(missing_ok=True)  # not indexed: do not keep it
            raise
        if report.failed:
            path.unlink(missing_ok=True)
            raise LoadError(path, "; ".join(f["error"] for f in report.failed))
        return report.to_dict()

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

    def delete(self, who: Principal, doc_ids: Sequence[str]) -> list[str]:
        """Remove documents by id; an uploaded file is removed with its document.

        Raises:
            NotFound: none of the ids is indexed.
        """
        who.require_admin("delete")
        known = {d.doc_id: d for d in self.pipeline.documents()}
        missing = [d for d in doc_ids if d not in known]
        if missing:
            raise NotFound(f"document {', '.join(map(repr, missing))}: not indexed (see GET /v1/documents)")
        deleted, _ = self.pipeline.delete(list(doc_ids))
        uploads = self.upload_dir.resolve()
        for doc_id in deleted:
            source = Path(known[doc_id].source)
            if source.is_relative_to(uploads) and source.is_file():
                source.unlink()
        return deleted

    def reindex(self, who: Principal) -> Job:
        """Read every indexed document's file again: changed ones are re-embedded, vanished ones dropped."""
        who.require_admin("reindex")
        return self.jobs.submit("reindex", self._reindex)

    def _reindex(self, progress) -> dict[str, Any]:
        by_group: dict[str, set[Path]] = {}
        gone: list[str] = []
        for d in self.pipeline.documents():
            source = Path(d.source)
            if source.is_file():
                by_group.setdefault(d.group, set()).add(source)
            else:
                gone.append(d.doc_id)
        totals: dict[str, Any] = {"added": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": [], "chunks": 0}
        for group, paths in sorted(by_group.items()):
            report = self.pipeline.ingest(sorted(paths), group, progress=progress).to_dict()
            for key in ("added", "updated", "unchanged", "deleted"):
                totals[key] += report[key]
            totals["failed"] += report["failed"]
        if gone:
            deleted, _ = self.pipeline.delete(gone)
            totals["deleted"] += len(deleted)
        totals["chunks"] = sum(len(d.chunk_ids) for d in self.pipeline.documents())
        return totals
