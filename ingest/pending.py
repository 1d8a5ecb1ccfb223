"""Files that wait for OCR: a scan or photo ingested where Tesseract is missing is remembered
(status "needs OCR" in the document lists, with the reason) instead of being dropped or indexed
empty, and is indexed by the next ingest or re-index that can read it.

    waiting = WaitingForOcr(Path("index"))
    waiting.update(add=[Waiting("/d/스캔.pdf", "/d/스캔.pdf", "hr", "no text layer …", "ab12…")])
    waiting.load() -> {"/d/스캔.pdf": Waiting(doc_id="/d/스캔.pdf", source="/d/스캔.pdf", group="hr", …)}

Kept in `<index_dir>/needs-ocr.json`, beside the generations (not in one: recording a waiting
file must not rewrite the index), written atomically under the index's writer lock.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FILE = "needs-ocr.json"


@dataclass(frozen=True)
class Waiting:
    """A file whose pages need OCR: its would-be document id, group, why, its hash and since when."""

    doc_id: str
    source: str
    group: str
    reason: str
    sha256: str = ""
    since: str = ""


class WaitingForOcr:
    """The list of files waiting for OCR of one index (see the module docstring)."""

    def __init__(self, index_dir: Path) -> None:
        self.path = Path(index_dir) / FILE

    def load(self) -> dict[str, Waiting]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {k: Waiting(**v) for k, v in raw.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError) as exc:
            log.warning("%s: unreadable, treated as empty (%s)", self.path, exc)
            return {}

    def update(self, add: Iterable[Waiting] = (), remove: Iterable[str] = ()) -> dict[str, Waiting]:
        """Add (or refresh) entries and remove doc ids; returns the new list. Call it holding the
        index's writer lock."""
        entries = self.load()
        before = dict(entries)
        for doc_id in remove:
            entries.pop(doc_id, None)
        for w in add:
            entries[w.doc_id] = w
        if entries != before:
            self._write(entries)
        return entries

    def _write(self, entries: dict[str, Waiting]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{FILE}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump({k: asdict(v) for k, v in sorted(entries.items())}, f, ensure_ascii=False, indent=1)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path)  # a reader sees the old list or the new one, never half of one
