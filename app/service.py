"""What the server does for a caller, shared by the HTTP API and the web UI.

service = Service.from_settings(Settings())          # keys required
service = Service.from_settings(Settings(), open_mode=True)   # `serve --open`: no keys
who = service.authenticate("chk_…")                   # -> Principal, or AuthError
service.ask(who, "연차휴가는 며칠인가요?")             # -> Answer, only from who's groups
service.upload(who, "규정.txt", data, group="hr")      # -> Job (admin only)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from retrieval.retriever import SearchFilters
from retrieval.types import Hit

from grounding import Answer, CheckCancelled, Grounded, Passage

from answer import StreamEvent, final_answer
from .auth import OPEN_PRINCIPAL, AuthError, KeyStore, PermissionDenied, Principal, SessionStore, parse_groups
from .documents import DocumentAdmin, NotFound, UploadRejected, safe_filename
from .jobs import STATUSES, Job, JobQueue
from .jobs_shared import SharedJobQueue, replica_name
from .limits import RateLimited, RateLimiter, SharedBuckets
from .pipeline import Pipeline
from .schemas import doc_to_dict
from .settings import Settings
from .audit import AuditLog, audited, current_via, outcome_of, recorded
from .feedback import FeedbackDesk
from .sources import SourceViewer
from .sso import TrustedHeaders, sso_handle
from .state import FeedbackStore, TombstoneStore, state_database
from .statedb import StateDB

log = logging.getLogger(__name__)

__all__ = ["AnswerTimeout", "ClientGone", "NotFound", "RequestTooLarge", "ServerBusy", "Service",
           "UploadRejected", "safe_filename"]


class ServerBusy(RuntimeError):
    """Every answer slot stayed taken for the whole wait (HTTP 503; retry later)."""


class AnswerTimeout(TimeoutError):
    """An answer took longer than `server.ask_timeout_s` and was stopped (HTTP 504)."""


class RequestTooLarge(ValueError):
    """A request whose content is over a size limit (HTTP 413)."""


class ClientGone(RuntimeError):
    """The caller went away; the work done for it was stopped (never reaches a client)."""


@dataclass
class Service(DocumentAdmin, SourceViewer, FeedbackDesk):
    """Everything `chulcheo serve` exposes, with access checks; the API and UI are thin over it."""

    pipeline: Pipeline
    keys: KeyStore | None  # None: open mode, no keys
    feedback: FeedbackStore
    jobs: JobQueue | SharedJobQueue | None = None  # None: made here (in memory, or shared with state.url)
    sessions: SessionStore | None = None  # web-UI logins; None in open mode
    tombstones: TombstoneStore | None = None  # documents deleted from files that stay indexed
    state: StateDB | None = None  # where the stores above live (None: the SQLite file of state_dir)

    def __post_init__(self) -> None:
        s = self.settings.server
        if self.state is None:
            self.state = state_database(self.settings)
        # llama.cpp answers one request at a time; the rest wait here instead of inside the model.
        self._answer_slots = threading.BoundedSemaphore(s.max_concurrent_answers)
        self._check_slots = threading.BoundedSemaphore(s.max_concurrent_checks)
        self._rate = self._limiter("ask", s.ask_per_minute, s.ask_burst)
        self._feedback_rate = self._limiter("feedback", s.feedback_per_minute, s.feedback_burst)
        if self.jobs is None:
            handlers = {"upload": self._run_upload, "reindex": self._run_reindex}
            self.jobs = (SharedJobQueue(self.state, handlers, replica=replica_name(), poll_s=self.settings.state.job_poll_s)
                         if self.state.is_postgres else JobQueue(handlers))
        # one upload or delete at a time decides which stored file is which document's
        self._files_lock = threading.Lock()
        self._warming = threading.Event()  # set while warm_up runs
        self._model_error: str | None = None
        self._init_viewer()
        self.sso = TrustedHeaders(self.settings.auth)
        self.audit = AuditLog(self.state, self.settings.audit)
        self._sso_users: OrderedDict[str, tuple[Principal, float]] = OrderedDict()
        self._sso_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, open_mode: bool = False, pipeline: Pipeline | None = None) -> Service:
        db = state_database(settings)  # SQLite: the stores create the folder
        if db.is_postgres and not settings.index.url:
            log.warning("state.url is set but the index is local files (index.url unset): each replica "
                        "searches its own index, so a document uploaded through one is not found by the others")
        service = cls(
            pipeline=pipeline or Pipeline(settings),
            keys=None if open_mode else KeyStore(db),
            feedback=FeedbackStore(db),
            sessions=None if open_mode else SessionStore(db),
            tombstones=TombstoneStore(db),
            state=db,
        )
        service.sweep_uploads()
        return service

    def _limiter(self, name: str, per_minute: float, burst: int) -> RateLimiter:
        """A per-key limiter; with state.url its buckets are shared by every replica."""
        shared = SharedBuckets(self.state, name) if self.state.is_postgres and per_minute > 0 else None
        return RateLimiter(per_minute, burst, shared=shared)

    def close(self) -> None:
        """Stop the job worker and close the state database's connections (tests, shutdown)."""
        self.jobs.close()
        self.state.close()

    @property
    def open_mode(self) -> bool:
        return self.keys is None

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

    def trusted(self, host: str | None, headers: Mapping[str, str]) -> Principal | None:
        """The user a trusted proxy's headers name (auth.trusted_header_*), else None (see app.sso)."""
        if not self.sso.enabled:
            return None
        principal = self.sso.principal(host, headers)
        if principal is not None:
            with self._sso_lock:  # the web UI finds the user again by its handle
                handle = sso_handle(principal)
                self._sso_users[handle] = (principal, time.monotonic())
                self._sso_users.move_to_end(handle)
                while len(self._sso_users) > 10_000:
                    self._sso_users.popitem(last=False)
        return principal

    def ui_handle(self, host: str | None, headers: Mapping[str, str], token: str | None) -> str | None:
        """The web UI's user handle of a request: its login session, else its trusted-proxy user."""
        handle = self.sessions.handle(token) if self.sessions is not None else None
        if handle is None:
            principal = self.trusted(host, headers)
            handle = sso_handle(principal) if principal is not None else None
        return handle

    def ui_principal(self, handle: str | None) -> Principal:
        """The caller of a web-UI session handle (see SessionStore.handle, ui_handle); open mode:
        the demo admin.

        Raises:
            AuthError: no session, or it ended (logged out, expired, or its key was revoked).
        """
        if self.keys is None or self.sessions is None:
            return OPEN_PRINCIPAL
        if handle is not None and handle.startswith("sso:"):
            with self._sso_lock:
                known = self._sso_users.get(handle)
            if known is not None and time.monotonic() - known[1] < self.settings.server.session_hours * 3600:
                return known[0]
            raise AuthError("the single sign-on session has ended; reload the page")
        key_id = self.sessions.key_id(handle)
        principal = self.keys.by_id(key_id) if key_id else None
        if principal is None:
            raise AuthError("the session has ended (logged out, expired or its key was revoked); log in again")
        return principal

    # ------------------------------------------------------------------ reading
    def search(self, who: Principal, query: str, k: int | None = None, mode: str | None = None) -> list[Hit]:
        """Hits from the caller's groups only: the filter applies inside each leg, before ranking."""
        with audited(self.audit, who, "search", question=query) as note:
            if not query.strip():
                raise ValueError("query: empty")
            k = min(k or self.settings.retrieval.k, self.settings.server.search_k_max)
            groups = who.search_groups()
            filters = SearchFilters(groups=set(groups)) if groups is not None else None
            hits = self.pipeline.search(query, k, mode=mode, filters=filters)
            note.returned = [h.chunk.doc_id for h in hits]
            return hits

    def ask(self, who: Principal, question: str, history=None) -> Answer:
        return final_answer(self.stream(who, question, history))

    def stream(self, who: Principal, question: str, history=None, *, tokens: bool = False,
               cancelled: Callable[[], bool] | None = None) -> Iterator[StreamEvent]:
        """Stream events of one answer from the caller's groups (see _stream), recorded in the
        audit log when it ends, with the front door it came through (app.audit.via)."""
        events = self._stream(who, question, history, tokens=tokens, cancelled=cancelled)
        return self._audited_stream(events, who, question, current_via())

    def _audited_stream(self, events: Iterator[StreamEvent], who: Principal, question: str,
                        route: str) -> Iterator[StreamEvent]:
        answer, outcome = None, "ok"
        try:
            for event in events:
                answer = event.answer or answer
                yield event
        except BaseException as exc:
            outcome = outcome_of(exc)
            raise
        finally:
            events.close()  # stops the model and frees its slot when the consumer left early
            returned = [h.chunk.doc_id for h in answer.hits] if answer else []
            cited = [c.doc_id for c in answer.citations] if answer else []
            if answer is not None:
                outcome = "abstained" if answer.abstained else "ok"
            self.audit.record(who, "ask", question=question, returned=returned, cited=cited, outcome=outcome,
                              route=route)

    def _stream(self, who: Principal, question: str, history=None, *, tokens: bool = False,
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

            def should_stop() -> bool:  # the check after the draft stops for the same reasons
                return (cancelled is not None and cancelled()) or time.monotonic() > deadline

            for event in self.pipeline.stream(question, history, who.search_groups(), tokens=True,
                                              should_stop=should_stop):
                if event.kind == "answer":  # where each cited span sits on its page (PDFs, scans)
                    event = replace(event, answer=self.locator.locate(event.answer))
                if event.kind != "token" or tokens:
                    yield event
                if cancelled is not None and cancelled():
                    raise ClientGone("the client went away; the answer was stopped")
                if event.kind != "answer" and time.monotonic() > deadline:
                    # leaving the loop closes the stream, which stops the model and frees its lock
                    raise AnswerTimeout(f"the answer took longer than {s.ask_timeout_s:g} s and was stopped; "
                                        "ask a narrower question or raise server.ask_timeout_s")
        except CheckCancelled as exc:
            if cancelled is not None and cancelled():
                raise ClientGone("the client went away; the answer was stopped") from exc
            raise AnswerTimeout(f"the answer took longer than {s.ask_timeout_s:g} s and was stopped; "
                                "ask a narrower question or raise server.ask_timeout_s") from exc
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

    def usage(self, question: str, history: Sequence[dict[str, str]], answer: str) -> dict[str, int]:
        """OpenAI-style token counts: the question with its conversation, and the answer text,
        by the generation model's tokenizer (the prompt the model saw also holds the passages)."""
        count = self.pipeline.generator.count_tokens
        prompt = sum(count(t["content"]) for t in history) + count(question)
        completion = count(answer)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    @recorded("verify", detail=lambda answer, passages, *a, **k: f"{len(passages)} passages")
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
        # stored, not indexed: a scan whose pages need OCR, which is missing here (ingest.pending)
        rows += [{"doc_id": w.doc_id, "source": w.source, "title": Path(w.source).stem, "group": w.group,
                  "sha256": w.sha256 or None, "chunks": 0, "pages": [], "ingested_at": None, "status": "needs_ocr",
                  "error": w.reason} for w in self.pipeline.waiting() if who.can_see(w.group)]
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
            raise NotFound(f"job {job_id!r}: no such job (without state.url jobs are kept in memory until the "
                           f"server restarts)")
        return job

    def visible_jobs(self, who: Principal) -> list[Job]:
        """Jobs about the caller's groups only, newest first."""
        return [j for j in self.jobs.list() if self._may_see_job(who, j)]

    @staticmethod
    def _may_see_job(who: Principal, job: Job) -> bool:
        groups = job.detail.get("groups") or [job.detail.get("group", "")]
        return who.groups is None or ("*" not in groups and all(who.can_see(g) for g in groups))

    @recorded("feedback", detail=lambda rating, *a, **k: f"rating={rating}")
    def add_feedback(self, who: Principal, rating: int, question: str, answer: str,
                     citations: list[dict[str, Any]], comment: str = "") -> int:
        s = self.settings.server
        self._take(self._feedback_rate, who, f"more than {s.feedback_burst} ratings at once or "
                                             f"{s.feedback_per_minute:g} a minute")
        return self.feedback.add(who.name, rating, question, answer, citations, comment, groups=who.groups_text)

    # ------------------------------------------------------------------ keys (admin)
    def list_keys(self, who: Principal) -> list[dict[str, Any]]:
        """Keys whose groups all lie within the caller's (never their secrets)."""
        who.require_admin("keys")
        if self.keys is None:
            return []
        return [k for k in self.keys.list() if who.covers(_groups_of(k))]

    @recorded("key_create", detail=lambda name, role, groups: f"{name} role={role} groups={groups}")
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

    @recorded("key_revoke", detail=lambda name_or_id: name_or_id)
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

def _groups_of(key: dict[str, Any]) -> frozenset[str] | None:
    groups = key["groups"]
    return None if "*" in groups else frozenset(groups)
