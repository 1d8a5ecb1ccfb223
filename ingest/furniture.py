"""Page furniture: running headers, footers and page numbers, found per document and taken out.

A PDF page's text starts with the running header ("대외비 · 인사팀 · 취업규칙") and ends with
the footer ("- 3 -"). Left in, they are glued to the first sentence of every page by reflow,
match every query that names the team, and are quoted back. `strip_furniture` looks at the
first and last `EDGE_LINES` lines of every page of one document and removes a line when the
same line (digits aside: "- 3 -" and "- 4 -" are one line) stands at that edge of at least
half the pages (and of two). A lone page number ("- 3 -", "3", "3 / 12", "p. 3") equal to its
page's number is removed on its own, so one-page documents lose theirs too.

    blocks, removed = strip_furniture([Block("대외비 · 인사팀\\n제1조 …\\n- 1 -", page=1, layout=True),
                                       Block("대외비 · 인사팀\\n제5조 …\\n- 2 -", page=2, layout=True)])
    -> [Block("제1조 …", page=1, …), Block("제5조 …", page=2, …)],
       {1: ["대외비 · 인사팀", "- 1 -"], 2: ["대외비 · 인사팀", "- 2 -"]}

Only paged layout blocks (PDF pages; OCR'd pages) are looked at; the removed lines are kept
for the chunks' metadata (`Chunk.metadata["furniture"]`).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import replace

from .types import Block

EDGE_LINES = 2  # lines at each edge of a page that may be furniture
MIN_SHARE = 0.5  # a line is running when it stands at the same edge of this share of the pages

_DIGITS = re.compile(r"\d+")
# "- 3 -", "3", "(3)", "3 / 12", "3 of 12", "p. 3", "Page 3", "3쪽", "3 페이지"
_PAGE_NUMBER = re.compile(
    r"^[-–—(\[<\s]*(?:page|p\.)?\s*(\d{1,4})\s*(?:(?:/|of)\s*\d{1,4}|쪽|페이지)?[-–—)\]>\s]*$",
    re.IGNORECASE,
)


def _key(line: str) -> str:
    """A line as compared across pages: spaces collapsed, every number the same."""
    return _DIGITS.sub("#", " ".join(line.split()))


def _edges(lines: list[str]) -> tuple[list[int], list[int]]:
    """Indices of the first and the last EDGE_LINES non-blank lines."""
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return filled[:EDGE_LINES], filled[-EDGE_LINES:]


def _own_page_number(line: str, page: int) -> bool:
    match = _PAGE_NUMBER.match(line.strip())
    return bool(match) and int(match.group(1)) == page


def strip_furniture(blocks: list[Block]) -> tuple[list[Block], dict[int, list[str]]]:
    """`blocks` without their pages' running headers, footers and page numbers, and what was removed per page."""
    paged = [i for i, b in enumerate(blocks) if b.layout and b.page is not None]
    if not paged:
        return blocks, {}
    lines = {i: blocks[i].text.split("\n") for i in paged}
    top: Counter[str] = Counter()
    bottom: Counter[str] = Counter()
    pages = {blocks[i].page for i in paged}
    for edge_counter, pick in ((top, 0), (bottom, 1)):
        seen: dict[int | None, set[str]] = {}
        for i in paged:
            keys = {_key(lines[i][j]) for j in _edges(lines[i])[pick]}
            seen.setdefault(blocks[i].page, set()).update(keys)
        for keys in seen.values():
            edge_counter.update(keys)
    needed = max(2, math.ceil(len(pages) * MIN_SHARE))
    running_top = {k for k, n in top.items() if n >= needed}
    running_bottom = {k for k, n in bottom.items() if n >= needed}

    out = list(blocks)
    removed: dict[int, list[str]] = {}
    for i in paged:
        page = blocks[i].page
        assert page is not None
        first, last = _edges(lines[i])
        drop = {j for j in first if _key(lines[i][j]) in running_top}
        drop |= {j for j in last if _key(lines[i][j]) in running_bottom}
        # a page's own number at its very first or last line, even on a page of its own
        drop |= {j for j in first[:1] + last[-1:] if _own_page_number(lines[i][j], page)}
        if not drop:
            continue
        removed.setdefault(page, []).extend(lines[i][j].strip() for j in sorted(drop))
        out[i] = replace(blocks[i], text="\n".join(x for j, x in enumerate(lines[i]) if j not in drop).strip())
    return out, removed
