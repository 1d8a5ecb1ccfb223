"""The source viewer behind 원문 보기: a cited page as an image, the original file, the cited
unit in its surrounding text, and where a citation's span sits on its page.

    service.page_image(who, "d_5c0f…", 3)       -> PNG bytes of page 3 (caller's groups only)
    service.original_file(who, "d_5c0f…")       -> (Path("/srv/uploads/hr/…/규정.pdf"), "규정.pdf")
    service.surrounding(who, citation)          -> the cited chunk with its neighbours
    locator.locate(answer)                      -> the answer with `boxes` on its citations

A document is found only among the caller's groups, by its opaque id (or its stored id, for
in-process callers): another group's document is "not found" exactly like one that does not
exist. Only pages that hold indexed text can be shown, and only while the stored file is the
one that was indexed (same SHA-256); renders are cached by content, metered per key, and run
a few at a time.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path, PurePath

from grounding import Answer, Citation
from ingest.manifest import DocEntry
from ingest.ocr import Ocr
from ingest.pages import PageCache, PageNotFound, has_page_images, locate, render_page
from retrieval.types import Chunk

from .auth import Principal, PermissionDenied
from .audit import recorded
from .schemas import public_id

log = logging.getLogger(__name__)

MB = 1024 * 1024


class SourceChanged(RuntimeError):
    """The stored file is no longer the one that was indexed (HTTP 409)."""


class NoSource(LookupError):
    """No such document among the caller's, no such page, or the file is gone (HTTP 404)."""


class _Lru(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


class FileHashes:
    """SHA-256 of stored files, computed once per (path, size, mtime)."""

    def __init__(self, size: int = 1024) -> None:
        self._known = _Lru(size)
        self._lock = threading.Lock()

    def sha256(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        with self._lock:
            self._known.put(key, digest.hexdigest())
        return digest.hexdigest()


@dataclass
class CitationLocator:
    """Adds to each citation of a PDF or scan the boxes its highlighted span covers on its page.

    A citation whose file is gone, changed, or whose span is not found on the page keeps no
    boxes; the answer itself never fails for it.
    """

    ocr: Ocr | None
    max_pixels: int
    hashes: FileHashes

    def __post_init__(self) -> None:
        self._boxes = _Lru(1024)
        self._lock = threading.Lock()

    def locate(self, answer: Answer) -> Answer:
        if not any(has_page_images(c.source) and c.page for c in answer.citations):
            return answer
        return replace(answer, citations=tuple(self.citation(c) for c in answer.citations))

    def citation(self, c: Citation) -> Citation:
        if not (has_page_images(c.source) and c.page):
            return c
        text = c.highlighted
        try:
            path = Path(c.source)
            key = (self.hashes.sha256(path), c.page, text)
            with self._lock:
                boxes = self._boxes.get(key)
            if boxes is None:
                boxes = tuple(tuple(b.to_list()) for b in locate(path, c.page, text, ocr=self.ocr,
                                                                  max_pixels=self.max_pixels))
                with self._lock:
                    self._boxes.put(key, boxes)
        except Exception as exc:  # a missing or unreadable file: the citation stands without boxes
            log.info("no page boxes for %s p.%s: %s", c.source, c.page, exc)
            return c
        return replace(c, boxes=boxes)


class SourceViewer:
    """The viewer's methods on Service (which provides pipeline, settings and _take)."""

    def _init_viewer(self) -> None:
        s = self.settings.server
        self._view_rate = self._limiter("view", s.view_per_minute, s.view_burst)
        self._render_slots = threading.BoundedSemaphore(s.max_concurrent_renders)
        self._hashes = FileHashes()
        self._pages = PageCache(Path(self.settings.index_dir) / "page-cache", int(s.page_cache_mb * MB))
        o = self.settings.ocr
        # only the cache is read (never Tesseract): boxes of pages OCR'd at ingest
        ocr = Ocr(Path(self.settings.index_dir) / "ocr-cache", o.lang) if o.enabled else None
        self.locator = CitationLocator(ocr, self.pipeline.load_limits().max_image_pixels, self._hashes)

    def viewable(self, who: Principal, spec: str) -> DocEntry:
        """The indexed document `spec` names (opaque id or stored id) within the caller's groups.

        Raises:
            NoSource: none the caller may see (another group's reads the same as a missing one).
        """
        for d in self.pipeline.documents():
            if spec in (public_id(d.doc_id), d.doc_id) and who.can_see(d.group):
                return d
        raise NoSource(f"document {spec!r}: not found among the documents you may see")

    @recorded("view_page", detail=lambda spec, number, width=None: f"page {number}", returned=lambda png, spec, *a: [spec])
    def page_image(self, who: Principal, spec: str, number: int, width: int | None = None) -> bytes:
        """Page `number` of a PDF or scanned document as PNG, `width` pixels wide.

        Raises:
            NoSource: not the caller's, not a PDF/image, no indexed text on that page, or the file is gone.
            SourceChanged: the file changed since it was indexed.
            ValueError: width outside 100..server.page_width_max.
            RateLimited, ServerBusy: over the key's view rate; every render slot stayed busy.
        """
        s = self.settings.server
        width = s.page_width if width is None else width
        if not 100 <= width <= s.page_width_max:
            raise ValueError(f"width {width}: must be between 100 and {s.page_width_max} pixels")
        self._take_view(who)
        doc = self.viewable(who, spec)
        name = PurePath(doc.source).name
        if not has_page_images(doc.source):
            raise NoSource(f"{name}: a {PurePath(doc.source).suffix or 'text'} document has no page images; "
                           "its cited text is in the citation")
        if number not in doc.pages:
            raise NoSource(f"{name}: no page {number} with indexed text")
        path, sha = self._stored(doc)
        cached = self._pages.get(sha, number, width)
        if cached is not None:
            return cached
        self._acquire(self._render_slots, s.view_wait_s, None,
                      f"all {s.max_concurrent_renders} page render slot(s) stayed busy for {s.view_wait_s:g} s; retry later")
        try:
            png = render_page(path, number, width, self.pipeline.load_limits().max_image_pixels)
        except PageNotFound as exc:
            raise NoSource(str(exc)) from exc
        finally:
            self._render_slots.release()
        self._pages.put(sha, number, width, png)
        return png

    @recorded("download", returned=lambda result, spec: [spec])
    def original_file(self, who: Principal, spec: str) -> tuple[Path, str]:
        """The stored file of a document and its file name, for download.

        Raises:
            NoSource: not the caller's, or the file is gone. SourceChanged: changed since indexed.
            PermissionDenied: a record of a JSONL file that also holds other groups' records.
        """
        self._take_view(who)
        doc = self.viewable(who, spec)
        if doc.record_id is not None:
            others = {d.group for d in self.pipeline.documents() if d.source == doc.source}
            if not all(who.can_see(g) for g in others):
                raise PermissionDenied(f"{PurePath(doc.source).name}: the file also holds documents outside "
                                       "your groups; only its records you may see are shown")
        path, _ = self._stored(doc)
        return path, PurePath(doc.source).name

    @recorded("passage", detail=lambda spec, chunk_id, around=1: chunk_id, returned=lambda chunks, spec, *a, **k: [spec])
    def surrounding(self, who: Principal, spec: str, chunk_id: str, around: int = 1) -> list[Chunk]:
        """A passage asked for by id (MCP get_passage), with its neighbours; recorded."""
        return self.context_of(who, spec, chunk_id, around)

    def context_of(self, who: Principal, spec: str, chunk_id: str, around: int = 1) -> list[Chunk]:
        """The cited chunk of a document and up to `around` chunks before and after it (the UI's
        citation cards show it with every answer, which is recorded already)."""
        doc = self.viewable(who, spec)
        if chunk_id not in doc.chunk_ids:
            raise NoSource(f"{PurePath(doc.source).name}: no passage {chunk_id!r}")
        at = doc.chunk_ids.index(chunk_id)
        wanted = doc.chunk_ids[max(0, at - around):at + around + 1]
        by_id = self.pipeline.chunks_by_id(wanted)
        return [by_id[i] for i in wanted if i in by_id]

    def _take_view(self, who: Principal) -> None:
        """One page view or download off the key's view budget (RateLimited when spent)."""
        s = self.settings.server
        self._take(self._view_rate, who, f"more than {s.view_burst} page views at once or {s.view_per_minute:g} a minute")

    def _stored(self, doc: DocEntry) -> tuple[Path, str]:
        path = Path(doc.source)
        name = path.name
        try:
            sha = self._hashes.sha256(path)
        except OSError as exc:
            raise NoSource(f"{name}: the original file is no longer stored on the server") from exc
        if doc.record_id is None and sha != doc.sha256:
            raise SourceChanged(f"{name}: the file changed since it was indexed; re-index to view it")
        return path, sha
