"""What every loader shares: the safety limits, and helpers for sizes, sections and binary data.

    LoadLimits()                      -> 200 MB per file, 5,000 pages, 60 MP per image, zip-bomb limits
    human_size(209_715_200)           -> "200 MB"
    group_lines([("휴가", "연차휴가는 15일이다."), ("휴가", "병가는 60일이다.")])
                                      -> [Block("연차휴가는 15일이다.\\n병가는 60일이다.", None, "휴가")]
    looks_binary("\\x00\\x01가")         -> True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ingest.types import Block

MiB = 1 << 20


@dataclass(frozen=True)
class LoadLimits:
    """Safety limits applied before and while parsing a file."""

    max_file_bytes: int = 200 * MiB
    max_uncompressed_bytes: int = 200 * MiB  # zip containers (.docx/.hwpx) and HWP sections
    max_compression_ratio: int = 100  # per zip entry larger than 1 MiB
    max_zip_entries: int = 10_000
    max_pages: int = 5_000  # PDF, multi-page TIFF
    max_image_pixels: int = 60_000_000  # an image file's frame, or a scanned page as rendered for OCR


# C0/C1 controls except \t \n \v \f \r, and U+FFFD: what bytes that are no text in any encoding decode to.
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd]")
_MAX_CONTROL_SHARE = 0.05


def looks_binary(text: str) -> bool:
    """True when more than 5% of the characters are control characters other than whitespace, or U+FFFD."""
    if not text:
        return False
    controls = len(text) - len(_CONTROL_CHARS.sub("", text))
    return controls / len(text) > _MAX_CONTROL_SHARE


def human_size(n: int) -> str:
    """Format a byte count for messages: 2_254_857_830 → '2.1 GB', 209_715_200 → '200 MB', 12 → '12 bytes'."""
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def group_lines(lines: Iterable[tuple[str | None, str]], page: int | None = None) -> list[Block]:
    """Join consecutive (heading, line) pairs that share a heading into one Block.

    [("휴가", "연차휴가는 15일이다."), ("휴가", "병가는 60일이다."), ("근무", "재택근무는 불가하다.")]
    → [Block("연차휴가는 15일이다.\\n병가는 60일이다.", None, "휴가"), Block("재택근무는 불가하다.", None, "근무")]

    A line holding soft line breaks (a paragraph with DOCX <w:br/>, HWPX <hp:lineBreak/>, HTML
    <br>) becomes a Block of its own marked `layout`, so the chunker reflows it: a sentence the
    break cut is joined again, list lines stay lines, and the paragraph breaks around it stay.
    """
    blocks: list[Block] = []
    current: list[str] = []
    current_heading: str | None = None
    for heading, line in lines:
        line = line.strip()
        if not line:
            continue
        if current and (heading != current_heading or "\n" in line):
            blocks.append(Block("\n".join(current), page, current_heading))
            current = []
        current_heading = heading
        if "\n" in line:
            blocks.append(Block(line, page, heading, layout=True))
        else:
            current.append(line)
    if current:
        blocks.append(Block("\n".join(current), page, current_heading))
    return blocks
