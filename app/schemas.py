"""The JSON shapes of the stable contracts (CLI --json, HTTP API), built from our dataclasses.

Change them only additively: other tools parse them.
"""

from __future__ import annotations

from typing import Any

from grounding.types import Answer, Citation, Grounded, SentenceCheck
from ingest.manifest import DocEntry
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
    }


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
    }


def citation_to_dict(c: Citation) -> dict[str, Any]:
    """{"n", "doc_id", "source", "page", "chunk_id", "quote"}; quote == chunk text[start:end]."""
    return {
        "n": c.n,
        "doc_id": c.doc_id,
        "source": c.source,
        "page": c.page,
        "chunk_id": c.chunk_id,
        "quote": c.quote,
        "start": c.start,
        "end": c.end,
    }


def answer_to_dict(a: Answer) -> dict[str, Any]:
    """The `ask --json` shape (README: "Answer JSON")."""
    return {
        "answer": a.answer,
        "abstained": a.abstained,
        "mode": a.mode,
        "question": a.question,
        "query": a.query,
        "sentences": [sentence_to_dict(s) for s in a.sentences],
        "citations": [citation_to_dict(c) for c in a.citations],
        "hits": [hit_to_dict(h) for h in a.hits],
        "timings": {k: round(v, 4) for k, v in a.timings.items()},
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
