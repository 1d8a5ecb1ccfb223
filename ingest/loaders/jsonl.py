"""JSON Lines corpora (`.jsonl`): each line {"id", "text", "metadata"} is a document of its own.

    load_jsonl(Path("/d/hr.jsonl"), b'{"id": "hr-1", "text": "연차휴가는 15일이다."}', "public")
        -> [SourceDoc(doc_id="/d/hr.jsonl#hr-1", record_id="hr-1", blocks=[Block("연차휴가는 15일이다.")], …)]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ingest.errors import EmptyDocumentError, LoadError
from ingest.types import Block, SourceDoc

from .registry import Format, register


def _jsonl_record(path: Path, number: int, line: str) -> tuple[str, str, dict]:
    """Validate one JSONL line → (id, text, metadata); errors name the line number."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LoadError(path, f"line {number}: invalid JSON ({exc.msg})") from exc
    if not isinstance(record, dict):
        raise LoadError(path, f"line {number}: expected a JSON object, got {type(record).__name__}")
    doc_id, text, metadata = record.get("id"), record.get("text"), record.get("metadata", {})
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise LoadError(path, f"line {number}: missing or non-string 'id'")
    if not isinstance(text, str) or not text.strip():
        raise LoadError(path, f"line {number}: missing, empty or non-string 'text'")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise LoadError(path, f"line {number}: 'metadata' must be an object")
    return doc_id, text, metadata


def _jsonl_page(path: Path, number: int, metadata: dict) -> int | None:
    page = metadata.get("page")
    if page is None:
        return None
    if isinstance(page, bool) or not isinstance(page, (int, str)) or not str(page).strip().isdigit():
        raise LoadError(path, f"line {number}: metadata.page must be an integer, got {page!r}")
    return int(page)


def jsonl_doc_id(source: str, record_id: str) -> str:
    """The doc id of one JSONL line: its file's resolved path, '#', the line's id.

    jsonl_doc_id("/uploads/hr/faq.jsonl", "faq-1") → "/uploads/hr/faq.jsonl#faq-1"
    The file is part of the identity because line ids are only unique within one file: two
    groups' uploads may both hold a line "faq-1". '%' and '#' in the line id are escaped
    ("a#1" → "a%231"), so the last '#' always separates path and id and no two (file, id)
    pairs share a doc id; chunk ids append "#NNNN-hash" (`chunk_id`).
    """
    return f"{source}#{record_id.replace('%', '%25').replace('#', '%23')}"


def load_jsonl(path: Path, data: bytes, group: str = "public") -> list[SourceDoc]:
    """Each line {"id", "text", "metadata"} → one SourceDoc; blank lines are skipped.

    '{"id": "hr-1", "text": "연차휴가는 15일이다.", "metadata": {"page": 3}}' in /d/hr.jsonl
    → SourceDoc(doc_id="/d/hr.jsonl#hr-1", record_id="hr-1", title="hr-1",
                blocks=[Block("연차휴가는 15일이다.", page=3)], ...)

    Raises:
        LoadError: naming the line for invalid JSON, a missing id/text, or a duplicate id.
    """
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(path, f"not UTF-8 text at byte {exc.start}") from exc
    source = str(path.resolve())
    docs: list[SourceDoc] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        record_id, text, metadata = _jsonl_record(path, number, line)
        if record_id in first_line:
            raise LoadError(path, f"line {number}: duplicate id {record_id!r} (first on line {first_line[record_id]})")
        first_line[record_id] = number
        canonical = json.dumps({"id": record_id, "text": text, "metadata": metadata}, sort_keys=True, ensure_ascii=False)
        docs.append(
            SourceDoc(
                doc_id=jsonl_doc_id(source, record_id),
                source=source,
                title=str(metadata.get("title") or record_id),
                blocks=[Block(text.strip(), page=_jsonl_page(path, number, metadata))],
                sha256=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
                group=group,
                metadata=metadata,
                record_id=record_id,
            )
        )
    if not docs:
        raise EmptyDocumentError(path, "no records (only blank lines)")
    return docs


register(Format("JSON Lines", (".jsonl",), load_records=load_jsonl, accepts=("html",), text=True))
