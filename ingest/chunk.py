"""Split a `SourceDoc` into `Chunk`s along Korean sentence boundaries.

Chunks are sized in the embedding model's tokens, overlap by whole sentences, never cross a
page or a heading, and are exact substrings of the section text (citations quote them). A
block that keeps layout line breaks (`Block.layout`: a PDF page, hard-wrapped text, an Office
or HTML paragraph with soft line breaks) is reflowed first, so chunks are substrings of the
reflowed text and sentences are whole; `ingest.reflow` maps offsets back to the extracted text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

from retrieval.types import Chunk

from .furniture import strip_furniture
from .reflow import REFLOW_VERSION, kiwi_joiner, reflow
from .types import Block, SourceDoc

TokenCounter = Callable[[Sequence[str]], list[int]]

_LINE = re.compile(r"[^\n]+")
_WORD = re.compile(r"\S+")
# Kiwi's sentence splitting is superlinear in the length of one text (a 1 MB line: ~60 s),
# so longer lines go to it in pieces of at most this many characters.
MAX_KIWI_CHARS = 10_000
_SENTENCE_GAP = re.compile(r"[.!?。！？]\s")
_GAP = re.compile(r"\s")


@dataclass(frozen=True)
class Span:
    """A sentence (or a piece of an over-long one) as [start, end) offsets into a section text."""

    start: int
    end: int


class SentenceSplitter:
    """Korean sentence boundaries from Kiwi; a newline always ends a sentence.

    split("연차는 15일이다. 병가는 없다.\\n별표") -> [Span(0, 10), Span(11, 18), Span(19, 21)]
    """

    def __init__(self, kiwi=None) -> None:
        """kiwi: a loaded Kiwi, a zero-argument function returning one (shared and loaded only
        when a text is split), or None to load a private one on first use. Kiwi costs ~2 s
        and ~400 MB, so share the BM25 tokenizer's."""
        self._kiwi = kiwi

    @property
    def kiwi(self):
        """The Kiwi, loaded (or taken from the shared factory) on first use."""
        if self._kiwi is None:
            from kiwipiepy import Kiwi

            self._kiwi = Kiwi()
        elif callable(self._kiwi) and not hasattr(self._kiwi, "split_into_sents"):
            self._kiwi = self._kiwi()
        return self._kiwi

    def split(self, text: str) -> list[Span]:
        kiwi = self.kiwi
        lines = [
            piece
            for m in _LINE.finditer(text)
            for piece in _cut_line(m.start(), m.group())
            if piece[1].strip()
        ]
        spans: list[Span] = []
        for (offset, _line), sents in zip(
            lines, kiwi.split_into_sents([line for _, line in lines]), strict=True
        ):
            spans.extend(Span(offset + s.start, offset + s.end) for s in sents)
        return spans


def _cut_line(offset: int, line: str, limit: int = MAX_KIWI_CHARS) -> list[tuple[int, str]]:
    """A line as (offset, piece) pieces of at most `limit` characters that join back to it.

    Each cut falls after the last sentence end followed by a space in the second half of the
    window, else after its last whitespace, else at `limit` (a line without spaces):
    _cut_line(5, "가나다라. 마바 사아자", limit=9) -> [(5, "가나다라. "), (11, "마바 사아자")]
    """
    pieces: list[tuple[int, str]] = []
    start = 0
    while len(line) - start > limit:
        window = line[start : start + limit]
        gaps = [m.end() for m in _SENTENCE_GAP.finditer(window, limit // 2)]
        gaps = gaps or [m.end() for m in _GAP.finditer(window, 1)]
        end = start + (gaps[-1] if gaps else limit)
        pieces.append((offset + start, line[start:end]))
        start = end
    pieces.append((offset + start, line[start:]))
    return pieces


def index_text(chunk: Chunk, with_context: bool) -> str:
    """The text a chunk is embedded and BM25-indexed under; `chunk.text` itself stays a quote.

    With context, the document title and section heading come first, so a chunk that says
    "it" still matches questions naming its subject:
    index_text(Chunk(..., title="취업규칙", heading="제2장 휴가", text="15일을 준다."), True)
    -> "취업규칙 · 제2장 휴가\n15일을 준다."
    A title that merely repeats the line id (JSONL lines without a title; older indexes had it
    as the doc id) is left out, and a heading equal to the title is not repeated. The running
    header lines taken off the chunk's page (`metadata["furniture"]`, those with letters: not
    "- 3 -") come after the title: off the quoted text, they still say what the page is about
    ("대외비 · 인사팀 · 취업규칙", a repeated article title).
    """
    if not with_context:
        return chunk.text
    ids = (chunk.doc_id, chunk.metadata.get("record_id"))
    parts = list(dict.fromkeys(p for p in (chunk.title, *chunk.running_header(), chunk.heading) if p and p not in ids))
    return f"{' · '.join(parts)}\n{chunk.text}" if parts else chunk.text


def record_id_of(chunk: Chunk) -> str:
    """The id a corpus line was given for a JSONL chunk, else the doc id.

    record_id_of(Chunk(doc_id="/d/faq.jsonl#faq-1", metadata={"record_id": "faq-1"}, ...)) -> "faq-1"
    record_id_of(Chunk(doc_id="/d/규정.txt", ...)) -> "/d/규정.txt"
    Evaluation compares this with gold ids, which name corpus lines; chunks of indexes built
    before doc ids held the file carry no record_id, and their doc id is the line id.
    """
    return chunk.metadata.get("record_id") or chunk.doc_id


def chunk_id(doc_id: str, position: int, text: str) -> str:
    """Stable id from doc id, position and content: chunk_id("a.txt", 3, "가") -> "a.txt#0003-<8 hex>"."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return f"{doc_id}#{position:04d}-{digest}"


def _metadata(doc: SourceDoc, furniture: list[str] | None, first: Block) -> dict:
    """A chunk's metadata: the JSONL line's id, the running header/footer lines taken off its
    page, and for a page read by OCR its confidence ("ocr_confidence", 0-100)."""
    out: dict = {}
    if doc.record_id is not None:
        out["record_id"] = doc.record_id
    if furniture:
        out["furniture"] = furniture
    if first.ocr_confidence is not None:
        out["ocr_confidence"] = first.ocr_confidence
    return out


class Chunker:
    """Turns documents into chunks of at most `max_tokens` model tokens with sentence overlap.

    Args:
        count_tokens: batched token counter of the embedding model, e.g. lambda ts: [len(t) for t in ts].
        max_tokens: chunk budget; a single sentence longer than this is cut at word boundaries.
        overlap_tokens: up to this many tokens of trailing whole sentences repeat in the next chunk.
        reflow: join layout line breaks of `Block.layout` blocks before splitting sentences,
            after taking the pages' running headers, footers and page numbers off
            (`ingest.furniture`; they go to `Chunk.metadata["furniture"]`).
    """

    def __init__(
        self,
        count_tokens: TokenCounter,
        max_tokens: int = 256,
        overlap_tokens: int = 32,
        splitter: SentenceSplitter | None = None,
        reflow: bool = True,
    ) -> None:
        if not 0 <= overlap_tokens < max_tokens:
            raise ValueError(f"overlap_tokens={overlap_tokens} must be in [0, max_tokens={max_tokens})")
        self.count_tokens = count_tokens
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.splitter = splitter or SentenceSplitter()
        self.reflow = reflow

    @property
    def reflow_version(self) -> str | None:
        """What the build config records as `chunking.reflow`: the rule version, None when off."""
        return REFLOW_VERSION if self.reflow else None

    def chunk(self, doc: SourceDoc) -> list[Chunk]:
        """SourceDoc -> chunks in reading order with positions 0..n-1 (a JSONL line's id in metadata["record_id"])."""
        texts: list[tuple[str, Block]] = []
        blocks, furniture = strip_furniture(doc.blocks) if self.reflow else (doc.blocks, {})
        # Consecutive blocks sharing page and heading form one section; chunks stay inside it.
        for _, group in groupby(blocks, key=lambda b: (b.page, b.heading)):
            blocks = list(group)
            # Each layout block is reflowed alone: the breaks between blocks (paragraphs of a
            # DOCX beside one with a soft line break) are real and stay.
            text = "\n".join(self._reflowed(b) for b in blocks if b.text.strip())
            if text.strip():
                texts.append((text, blocks[0]))
        chunks: list[Chunk] = []
        for text, first in texts:
            for start, end in self._pack(text):
                piece = text[start:end]
                position = len(chunks)
                chunks.append(
                    Chunk(
                        chunk_id=chunk_id(doc.doc_id, position, piece),
                        doc_id=doc.doc_id,
                        text=piece,
                        source=doc.source,
                        page=first.page,
                        group=doc.group,
                        title=doc.title,
                        heading=first.heading,
                        position=position,
                        metadata=_metadata(doc, furniture.get(first.page) if first.page is not None else None, first),
                    )
                )
        return chunks

    def _reflowed(self, block: Block) -> str:
        """A block's text, reflowed when it keeps layout line breaks and reflow is on."""
        if not (self.reflow and block.layout):
            return block.text
        return reflow(block.text, kiwi_joiner(self.splitter.kiwi)).text

    def _pack(self, text: str) -> list[tuple[int, int]]:
        """Greedy packing of sentence spans into [start, end) windows within the token budget."""
        spans = self.splitter.split(text)
        counts = self.count_tokens([text[s.start : s.end] for s in spans])
        units: list[tuple[Span, int]] = []
        for span, n in zip(spans, counts, strict=True):
            units.extend(self._cut_long(text, span, n) if n > self.max_tokens else [(span, n)])

        windows: list[tuple[int, int]] = []
        current: list[tuple[Span, int]] = []
        used = 0
        for unit in units:
            if current and used + unit[1] > self.max_tokens:
                windows.append((current[0][0].start, current[-1][0].end))
                current, used = self._overlap_tail(current, unit[1])
            current.append(unit)
            used += unit[1]
        if current:
            windows.append((current[0][0].start, current[-1][0].end))
        return windows

    def _overlap_tail(
        self, units: list[tuple[Span, int]], incoming: int
    ) -> tuple[list[tuple[Span, int]], int]:
        """Trailing whole sentences of the finished window that fit the overlap and leave room."""
        budget = min(self.overlap_tokens, self.max_tokens - incoming)
        tail: list[tuple[Span, int]] = []
        used = 0
        for unit in reversed(units[1:]):  # never repeat the whole window
            if used + unit[1] > budget:
                break
            tail.insert(0, unit)
            used += unit[1]
        return tail, used

    def _cut_long(self, text: str, span: Span, n_tokens: int) -> list[tuple[Span, int]]:
        """An over-long sentence cut into word-aligned pieces that each fit the budget."""
        words = [
            Span(span.start + m.start(), span.start + m.end())
            for m in _WORD.finditer(text[span.start : span.end])
        ]
        pieces = max(2, -(-n_tokens // self.max_tokens))
        while True:
            size = -(-len(words) // pieces)
            groups = [words[i : i + size] for i in range(0, len(words), size)]
            spans = [Span(g[0].start, g[-1].end) for g in groups]
            counts = self.count_tokens([text[s.start : s.end] for s in spans])
            if max(counts) <= self.max_tokens or size == 1:
                return self._cut_chars(text, spans, counts)
            pieces += 1

    def _cut_chars(
        self, text: str, spans: list[Span], counts: list[int]
    ) -> list[tuple[Span, int]]:
        """Last resort for a single 'word' over budget (a URL, a table row without spaces)."""
        out: list[tuple[Span, int]] = []
        for span, n in zip(spans, counts, strict=True):
            if n <= self.max_tokens:
                out.append((span, n))
                continue
            pieces = -(-n // self.max_tokens) + 1
            step = max(1, -(-(span.end - span.start) // pieces))
            for start in range(span.start, span.end, step):
                piece = Span(start, min(start + step, span.end))
                out.append((piece, self.count_tokens([text[piece.start : piece.end]])[0]))
        return out
