"""Plain text and Markdown (`.txt`, `.md`) in any encoding Korean files come in.

    decode_text(path, "연차휴가는 15일이다.".encode("cp949")) -> "연차휴가는 15일이다."
    load_text(Path("규정.md"), b"# 취업규칙\n## 휴가\n연차휴가는 15일이다.", limits)
        -> ("취업규칙", [Block("연차휴가는 15일이다.", heading="휴가")])
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from charset_normalizer import from_bytes

from ingest.errors import LoadError
from ingest.reflow import looks_hard_wrapped
from ingest.types import Block

from .common import LoadLimits, group_lines, looks_binary
from .registry import Format, register

log = logging.getLogger(__name__)

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),  # the "utf-16" codec reads the BOM and strips it
    (b"\xfe\xff", "utf-16"),
)
_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_MD_FENCE = re.compile(r"^ {0,3}(```|~~~)")


def _decode_lines(data: bytes) -> str | None:
    """Decode each line as UTF-8, else CP949; None as soon as a line is neither.

    Concatenated logs and files edited by two tools mix both:
    "인천\\n".encode("utf-8") + "대전".encode("cp949") → "인천\\n대전"
    """
    lines: list[str] = []
    for line in data.splitlines(keepends=True):
        try:
            lines.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            try:
                lines.append(line.decode("cp949"))
            except UnicodeDecodeError:
                return None
    return "".join(lines)


def decode_text(path: Path, data: bytes) -> str:
    """Decode text bytes of unknown encoding and normalise newlines to '\\n'.

    Order: BOM (UTF-8/UTF-16) → strict UTF-8 → CP949 (a superset of EUC-KR) → each line as
    UTF-8, else CP949 → charset-normalizer.
    "연차휴가는 15일이다.".encode("cp949") → "연차휴가는 15일이다."

    Raises:
        LoadError: "binary data, not text" (NUL bytes without a UTF-16 BOM, many control chars,
            or no encoding fits).
    """
    text: str | None = None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError as exc:
                raise LoadError(path, f"invalid {codec} text after byte-order mark ({exc.reason})") from exc
            break
    if text is None:
        if b"\x00" in data:
            raise LoadError(path, "binary data, not text")
        for codec in ("utf-8", "cp949"):
            try:
                text = data.decode(codec)
                break
            except UnicodeDecodeError:
                continue
    if text is None:
        text = _decode_lines(data)
    if text is None:
        best = from_bytes(data).best()
        if best is None:
            raise LoadError(path, "binary data, not text")
        log.info("%s: decoded as %s (detected)", path, best.encoding)
        text = str(best)
    if looks_binary(text):
        raise LoadError(path, "binary data, not text")
    return text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff")


def markdown_lines(text: str) -> tuple[str | None, list[tuple[str | None, str]]]:
    """Split Markdown into (heading, line) pairs; '#' lines outside code fences set the heading.

    "# 취업규칙\\n## 휴가\\n연차휴가는 15일이다." → ("취업규칙", [("휴가", "연차휴가는 15일이다.")])
    """
    title: str | None = None
    heading: str | None = None
    in_fence = False
    lines: list[tuple[str | None, str]] = []
    for line in text.split("\n"):
        if _MD_FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence and (match := _MD_HEADING.match(line)):
            heading = match.group(2).strip()
            if title is None and len(match.group(1)) == 1:
                title = heading
            continue
        lines.append((heading, line))
    return title, lines


def load_text(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """Plain text → one Block; Markdown → one Block per heading section (title = first '# ').

    A plain text hard-wrapped at a width (`looks_hard_wrapped`) is marked for reflow.
    """
    text = decode_text(path, data)
    if path.suffix.lower() == ".md":
        title, lines = markdown_lines(text)
        return title, group_lines(lines)
    text = text.strip()
    return None, [Block(text, layout=looks_hard_wrapped(text))] if text else []


register(Format("text", (".txt", ".md"), load=load_text, accepts=("html",), text=True))
