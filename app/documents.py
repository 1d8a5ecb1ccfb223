"""Documents an admin manages through the server: uploads stored per version, replaced only
after the new version indexed, deletes that survive a re-index, re-indexing within the
caller's groups. Mixed into `Service` (app/service.py), which supplies pipeline, jobs,
settings and the stores.

service.upload(admin, "규정.txt", data, group="hr") -> Job (uploads/hr/<version>/규정.txt)
service.delete(admin, ["d_5c0f…"]) -> [DocEntry(...)]
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
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from ingest.errors import LoadError, NeedsOcrError
from ingest.load import SUPPORTED_EXTENSIONS, load_file, refuse_legacy
from ingest.manifest import DocEntry

from .auth import OPEN_PRINCIPAL, Principal, parse_groups
from .audit import recorded
from .jobs import Job, JobQueue
from .jobs_shared import SharedJobQueue
from .pipeline import MB, Pipeline
from .schemas import public_id
from .settings import Settings
from .state import TombstoneStore
from .statedb import StateDB

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


class UploadRejected(ValueError):
    """An upload that is refused before anything is stored; `status` is its HTTP code."""

    def __init__(self, filename: str, reason: str, status: int = 422) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename, self.reason, self.status = filename, reason, status


class NotFound(LookupError):
    """A named document or job that does not exist (HTTP 404)."""


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


class DocumentAdmin:
    """Upload, delete and re-index, each within the caller's groups (a mixin of Service)."""

    pipeline: Pipeline
    jobs: JobQueue | SharedJobQueue
    tombstones: TombstoneStore | None
    state: StateDB
    _files_lock: threading.Lock

    @property
    def settings(self) -> Settings:
        return self.pipeline.settings

    @property
    def upload_dir(self) -> Path:
        """Uploaded files: state.files_dir (one folder every replica mounts), else state_dir/uploads."""
        return Path(self.settings.state.files_dir or Path(self.settings.state_dir) / "uploads")

    # ------------------------------------------------------------------ writing (admin)
    @recorded("upload", detail=lambda filename, data=None, group="public": f"{filename} group={group}")
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
        try:
            refuse_legacy(Path(name))  # "옛문서.doc": say to save it as .docx, not just "not accepted"
        except LoadError as exc:
            raise UploadRejected(name, exc.reason, 415) from exc
        if ext not in allowed:
            shown = f"'{ext}'" if ext else "(none)"
            raise UploadRejected(name, f"file type {shown} is not accepted (accepted: {', '.join(allowed)})", 415)
        staging = self.upload_dir / STAGING / uuid.uuid4().hex
        staging.mkdir(parents=True)
        try:
            tmp = staging / name
            self._write_limited(tmp, data, int(s.max_upload_mb * MB), name)
            try:  # read it now, so a bad file is refused with its reason and never stored
                ocr = self.pipeline.ocr()  # a scan is read as far as its first pages here; the job reads it all
                load_file(tmp, group, limits=self.pipeline.load_limits(),
                          ocr=ocr.sampling(self.settings.ocr.upload_check_pages) if ocr is not None else None)
            except NeedsOcrError:
                pass  # stored and listed as "needs OCR"; indexed by a re-index once OCR is installed
            except LoadError as exc:
                raise UploadRejected(name, exc.reason, 422) from exc
            target = self.upload_dir / group / uuid.uuid4().hex[:16] / name
            target.parent.mkdir(parents=True)
            tmp.replace(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        detail = {"path": str(target.resolve()), "group": group, "filename": name}
        return self.jobs.submit("upload", detail)

    def _run_upload(self, detail: dict[str, Any], progress) -> dict[str, Any]:
        """The upload job (on whichever replica claimed it): index the stored file."""
        path = Path(detail["path"])
        if not path.is_file():
            raise LoadError(path, "the stored upload is not there (with replicas on several machines, "
                                  "state.files_dir must be a folder they all mount)")
        return self._index_upload(path, detail["group"], progress)

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
        if report.failed and not all(f.get("needs_ocr") for f in report.failed):
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
        # an upload being written right now (by another replica on a shared files_dir) is young
        for left in (root / STAGING).glob("*") if (root / STAGING).is_dir() else []:
            with contextlib.suppress(OSError):
                if time.time() - left.stat().st_mtime > STAGING_MAX_AGE_S or not self.state.is_postgres:
                    shutil.rmtree(left, ignore_errors=True)
        try:
            live = {d.source for d in [*self.pipeline.documents(), *self.pipeline.waiting()]}
            # uploads queued or running (on another replica too) are not leftovers
            live |= {j.detail.get("path") for j in self.jobs.list() if j.status in ("queued", "running")}
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
        docs = [d for d in [*self.pipeline.documents(), *self.pipeline.waiting()] if who.can_see(d.group)]
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

    @recorded("delete", returned=lambda gone, specs: [d.doc_id for d in gone])
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

    @recorded("reindex")
    def reindex(self, who: Principal) -> Job:
        """Read every document's file within the caller's groups again: changed ones are
        re-embedded, vanished ones dropped, deleted ones stay deleted."""
        who.require_admin("reindex")
        detail = {"groups": ["*"] if who.groups is None else sorted(who.groups)}
        return self.jobs.submit("reindex", detail)

    def _run_reindex(self, detail: dict[str, Any], progress) -> dict[str, Any]:
        """The re-index job, within the groups of the admin who asked for it (kept in its detail)."""
        who = Principal("reindex", "admin", parse_groups(detail["groups"]))
        return self._reindex(progress, who)

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
        for w in self.pipeline.waiting():  # scans stored before OCR was installed: read them now
            if who.can_see(w.group) and Path(w.source).is_file():
                by_group.setdefault(w.group, set()).add(Path(w.source))
        exclude = self.tombstones.doc_ids() if self.tombstones is not None else set()
        totals: dict[str, Any] = {"added": 0, "updated": 0, "unchanged": 0, "deleted": 0, "failed": [], "chunks": 0}
        if gone:
            # first: after a change of chunking settings the ingest below re-chunks every
            # indexed document, and a document whose file is gone could not be read again
            deleted, _ = self.pipeline.delete(gone)
            totals["deleted"] += len(deleted)
        for group, paths in sorted(by_group.items()):
            report = self.pipeline.ingest(sorted(paths), group, progress=progress, exclude=exclude).to_dict()
            for key in ("added", "updated", "unchanged", "deleted"):
                totals[key] += report[key]
            totals["failed"] += report["failed"]
        totals["chunks"] = sum(len(d.chunk_ids) for d in self.pipeline.documents() if who.can_see(d.group))
        return totals


STAGING = ".staging"
STAGING_MAX_AGE_S = 3600


def _remove_upload(path: Path, root: Path) -> None:
    """Delete a stored upload and its version folder when that is left empty (never above `root`)."""
    path.unlink(missing_ok=True)
    folder = path.parent
    if folder != root and folder.parent != root and folder.is_relative_to(root):
        with contextlib.suppress(OSError):
            folder.rmdir()
