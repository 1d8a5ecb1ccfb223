"""The JSON shapes of the stable contracts (CLI --json, HTTP API), built from our dataclasses.

Change them only additively: other tools parse them.
"""

from __future__ import annotations

import hashlib
from pathlib import PurePath
from typing import Any

from grounding.types import Answer, Citation, Grounded, SentenceCheck
from ingest.manifest import DocEntry
from ingest.pending import Waiting
from retrieval.types import Hit


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    """The `search --json` shape of one hit."""
    c = hit.chunk
    return {
        "rank": hit.rank,
        "chunk_id": c.chunk_id,
        "doc_id": c.doc_id,
        "source": c.source,
        "page": c.page,
        "score": round(float(hit.score), 6),
        "text": c.text,
        "title": c.title,
        "group": c.group,
    }


def doc_to_dict(d: DocEntry) -> dict[str, Any]:
    """The `docs list --json` shape of one indexed document."""
    return {
        "doc_id": d.doc_id,
        "source": d.source,
        "title": d.title,
        "group": d.group,
        "sha256": d.sha256,
        "chunks": len(d.chunk_ids),
        "pages": d.pages,
        "ingested_at": d.ingested_at,
        # pages read by OCR with their confidence (0-100), and those under ingest.ocr.LOW_CONFIDENCE
        "ocr_pages": {int(p): c for p, c in d.ocr_pages.items()},
        "low_confidence_pages": d.low_confidence_pages(),
    }


def waiting_to_dict(w: Waiting) -> dict[str, Any]:
    """The `docs list --json` shape of a file waiting for OCR ("needs_ocr")."""
    return {"doc_id": w.doc_id, "source": w.source, "group": w.group, "sha256": w.sha256 or None,
            "since": w.since, "error": w.reason}


def sentence_to_dict(s: SentenceCheck) -> dict[str, Any]:
    """{"text", "supported", "score", "citations": [n...]} plus why a sentence failed."""
    return {
        "text": s.text,
        "supported": s.supported,
        "score": s.score,
        "citations": list(s.citations),
        "reasons": list(s.reasons),
        "coverage": s.coverage,
        "similarity": None if s.similarity is None else round(s.similarity, 4),
        "quoted": s.quoted,
        "not_found": s.not_found,
    }


def citation_to_dict(c: Citation) -> dict[str, Any]:
    """{"n", "doc_id", "source", "page", "chunk_id", "quote"}; quote == chunk text[start:end];
    highlight_start/end: the part the answer relies on, inside the quote (None: the whole quote);
    boxes: where that part sits on the page image (PDFs and scans; [] otherwise)."""
    return {
        "n": c.n,
        "doc_id": c.doc_id,
        "source": c.source,
        "page": c.page,
        "chunk_id": c.chunk_id,
        "quote": c.quote,
        "start": c.start,
        "end": c.end,
        "highlight_start": c.highlight_start,
        "highlight_end": c.highlight_end,
        # [[x0, y0, x1, y1], ...] fractions of the page image (GET /v1/documents/{id}/pages/{n}.png)
        "boxes": [list(b) for b in c.boxes],
    }


def answer_to_dict(a: Answer) -> dict[str, Any]:
    """The `ask --json` shape (README: "Answer JSON")."""
    groups = {h.chunk.chunk_id: h.chunk.group for h in a.hits}
    return {
        "answer": a.answer,
        "abstained": a.abstained,
        "mode": a.mode,
        "question": a.question,
        "query": a.query,
        "sentences": [sentence_to_dict(s) for s in a.sentences],
        # each citation also names its access group (that of the hit it quotes)
        "citations": [{**citation_to_dict(c), "group": groups.get(c.chunk_id)} for c in a.citations],
        "hits": [hit_to_dict(h) for h in a.hits],
        "timings": {k: round(v, 4) for k, v in a.timings.items()},
        "loop_stopped": a.loop_stopped,
    }


def grounded_to_dict(g: Grounded) -> dict[str, Any]:
    """The `verify --json` shape: {"answer", "abstained", "mode", "sentences", "citations"}."""
    return {
        "answer": g.answer,
        "abstained": g.abstained,
        "mode": g.mode,
        "sentences": [sentence_to_dict(s) for s in g.sentences],
        "citations": [citation_to_dict(c) for c in g.citations],
    }


# ---------------------------------------------------------------------- what an HTTP caller sees
def public_id(doc_id: str) -> str:
    """The opaque id an HTTP caller sees for a document: "d_" + 20 hex digits of its SHA-256.

    Stable for a document, tells nothing about where it is stored; DELETE accepts it.
    public_id("/srv/uploads/hr/1a2b/규정.txt") -> "d_5c0f…"
    """
    return "d_" + hashlib.sha256(doc_id.encode("utf-8")).hexdigest()[:20]


def public_chunk_id(chunk_id: str, doc_id: str) -> str:
    """"<doc id>#0003-ab12" -> "<public id>#0003-ab12" (the chunk's position and text hash stay)."""
    suffix = chunk_id[len(doc_id):] if chunk_id.startswith(doc_id) else "#" + chunk_id.rpartition("#")[2]
    return public_id(doc_id) + suffix


def public_view(d: dict[str, Any], *, admin: bool) -> dict[str, Any]:
    """A hit, citation or document dict as an HTTP caller sees it: `source` is the file name and
    the ids are opaque; an admin also gets the stored `path`. The CLI's --json keeps the paths.

    public_view({"doc_id": "/s/hr/규정.txt", "source": "/s/hr/규정.txt", ...}, admin=False)
    -> {"doc_id": "d_…", "source": "규정.txt", ...}
    """
    out = dict(d)
    source = d.get("source") or ""
    out["source"] = PurePath(source).name if source else source
    if d.get("doc_id"):
        out["doc_id"] = public_id(d["doc_id"])
        if d.get("chunk_id"):
            out["chunk_id"] = public_chunk_id(d["chunk_id"], d["doc_id"])
    if admin:
        out["path"] = source
    return out


def public_answer(a: dict[str, Any], *, admin: bool) -> dict[str, Any]:
    """answer_to_dict / grounded_to_dict output with every hit and citation in public_view."""
    out = dict(a)
    for key in ("hits", "citations"):
        if key in out:
            out[key] = [public_view(x, admin=admin) for x in out[key]]
    return out
