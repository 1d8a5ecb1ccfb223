"""How many chunk sentences end mid-sentence on KorQuAD paragraphs typeset as wrapped PDF lines,
with and without reflow at ingest.

200 KorQuAD dev paragraphs (the first that NanumGothic renders exactly and that fit one page)
are written one per page into a PDF with fpdf2 in a narrow column (80 mm, 10 pt), once wrapped
at spaces (WORD, like most generators) and once at any character (CHAR, like Hangul word
processors, which break words). Each PDF goes through the real loader (pypdf) and `Chunker`
(Kiwi sentences, 256 "tokens" of non-space characters, 32 of overlap) with reflow off and on.

Truth: Kiwi's sentence ends in the clean paragraph; the clean paragraphs themselves, chunked
the same way, give the floor (`clean_text`). A chunk sentence (what the grounding
checker quotes: `SentenceSplitter.split` of a chunk's text) is a fragment when its end, counted
in non-space characters, is not one of those ends. Also reported: at each joined line break,
whether the space decision (" " or "") matches the clean paragraph.

    .venv/bin/python bench/reflow_check.py --out reflow_check.json
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import time
from pathlib import Path

from fpdf import FPDF
from pypdf import PdfReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import KORQUAD, emit
from ingest.chunk import Chunker, SentenceSplitter
from ingest.load import LoadLimits, load_pdf
from ingest.reflow import kiwi_joiner, reflow, rule_joiner
from ingest.types import Block, SourceDoc
from tests.pdfs import find_korean_ttf

logging.getLogger("fontTools").setLevel(logging.ERROR)


def char_count(texts):
    return [len("".join(t.split())) for t in texts]


def nonspace_ends(text: str, spans) -> set[int]:
    """End offsets of spans, counted in non-space characters of `text`."""
    counts, n = [], 0
    for ch in text:
        counts.append(n)
        n += not ch.isspace()
    counts.append(n)
    return {counts[s.end] for s in spans}


def render(paragraphs: list[str], font: Path, wrapmode: str) -> bytes:
    pdf = FPDF()
    pdf.add_font("korean", fname=str(font))
    pdf.set_font("korean", size=10)
    pdf.set_auto_page_break(False)
    for paragraph in paragraphs:
        pdf.add_page()
        pdf.multi_cell(80, 5, paragraph, wrapmode=wrapmode)
    return bytes(pdf.output())


def pick_paragraphs(n: int, font: Path) -> list[str]:
    """The first n KorQuAD dev paragraphs of at most 1,000 characters that come back exactly."""
    data = json.loads(KORQUAD.read_text(encoding="utf-8"))
    candidates = [p["context"].strip() for a in data["data"] for p in a["paragraphs"] if len(p["context"]) <= 1000]
    picked: list[str] = []
    for start in range(0, len(candidates), 50):
        batch = candidates[start : start + 50]
        pages = PdfReader(io.BytesIO(render(batch, font, "WORD"))).pages
        for paragraph, page in zip(batch, pages, strict=True):
            if "".join((page.extract_text() or "").split()) == "".join(paragraph.split()):
                picked.append(paragraph)
        if len(picked) >= n:
            return picked[:n]
    return picked


def measure(paragraphs: list[str], pdf: bytes | None, splitter: SentenceSplitter, truth: list[set[int]], on: bool) -> dict:
    """Fragment share of the PDF's chunk sentences; with pdf=None, of the clean paragraphs (the floor)."""
    if pdf is None:
        blocks = [Block(p, page=i + 1) for i, p in enumerate(paragraphs)]
    else:
        _, blocks = load_pdf(Path("korquad.pdf"), pdf, LoadLimits())
    chunker = Chunker(char_count, max_tokens=256, overlap_tokens=32, splitter=splitter, reflow=on)
    total = fragments = 0
    for block, ends, clean in zip(blocks, truth, paragraphs, strict=True):
        if "".join(block.text.split()) != "".join(clean.split()):
            raise ValueError(f"page {block.page} does not read back as its paragraph")
        doc = SourceDoc(doc_id="k", source="k", title="k", blocks=[block], sha256="0")
        page_text = reflow(block.text, kiwi_joiner(splitter.kiwi)).text if on else block.text
        for chunk in chunker.chunk(doc):
            offset = page_text.index(chunk.text)
            prefix = len("".join(page_text[:offset].split()))
            sentence_ends = {prefix + e for e in nonspace_ends(chunk.text, splitter.split(chunk.text))}
            total += len(sentence_ends)
            fragments += len(sentence_ends - ends)
    return {"chunk_sentences": total, "mid_sentence": fragments, "share": round(fragments / total, 4)}


def spacing_accuracy(paragraphs: list[str], pdf: bytes, joiner) -> dict:
    """At each joined break: does the join's " " or "" match the clean paragraph's spacing?"""
    _, blocks = load_pdf(Path("korquad.pdf"), pdf, LoadLimits())
    right = wrong = 0
    for block, clean in zip(blocks, paragraphs, strict=True):
        spaced_before, n = set(), 0
        for i, ch in enumerate(clean):
            if not ch.isspace():
                if i and clean[i - 1].isspace():
                    spaced_before.add(n)
                n += 1
        r = reflow(block.text, joiner)
        for join in r.joins:
            k = len("".join(block.text[: join.end].split()))
            if (join.text == " ") == (k in spaced_before):
                right += 1
            else:
                wrong += 1
    return {"joins": right + wrong, "spacing_right": right, "share_right": round(right / max(1, right + wrong), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paragraphs", type=int, default=200)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    font = find_korean_ttf()
    if font is None:
        sys.exit("no Korean TrueType font (apt-get install -y fonts-nanum)")
    started = time.perf_counter()
    paragraphs = pick_paragraphs(args.paragraphs, font)
    splitter = SentenceSplitter()
    truth = [nonspace_ends(p, splitter.split(p)) for p in paragraphs]
    result: dict = {"paragraphs": len(paragraphs), "font": font.name, "column_mm": 80, "font_pt": 10}
    clean_sentences = sum(len(t) for t in truth)
    result["clean_sentences"] = clean_sentences
    # Chunks cut over-long sentences at the budget, so even clean text has a few.
    result["clean_text"] = measure(paragraphs, None, splitter, truth, on=False)
    for wrapmode in ("WORD", "CHAR"):
        pdf = render(paragraphs, font, wrapmode)
        result[wrapmode.lower()] = {
            "reflow_off": measure(paragraphs, pdf, splitter, truth, on=False),
            "reflow_on": measure(paragraphs, pdf, splitter, truth, on=True),
            "spacing_kiwi": spacing_accuracy(paragraphs, pdf, kiwi_joiner(splitter.kiwi)),
            "spacing_rule": spacing_accuracy(paragraphs, pdf, rule_joiner),
        }
    result["seconds"] = round(time.perf_counter() - started, 1)
    emit(result, args.out)


if __name__ == "__main__":
    main()
