"""HTML pages (`.html`, `.htm`): visible text in heading sections, tables row by row with their headers.

    load_html(path, "<title>복지</title><h2>휴가</h2><p>연차휴가는 15일이다.</p>".encode(), limits)
        -> ("복지", [Block("연차휴가는 15일이다.", heading="휴가")])
"""

from __future__ import annotations

from pathlib import Path

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import PreformattedString

from ingest.errors import LoadError
from ingest.tables import MAX_SPAN, Cell, layout, table_lines
from ingest.types import Block

from .common import LoadLimits, group_lines, looks_binary
from .registry import Format, Magic, register

_HTML_SKIP = {"script", "style", "nav", "noscript", "template", "head", "svg", "iframe"}
_HTML_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_HTML_BREAKS = {
    "p", "div", "li", "ul", "ol", "dl", "dt", "dd", "table", "section", "article",
    "main", "header", "footer", "aside", "blockquote", "pre", "hr", "form", "figure", "figcaption",
}  # fmt: skip


def _after(tag: Tag) -> object:
    """The first node after `tag`'s whole subtree (iterative, safe for deep nesting)."""
    last: object = tag
    while isinstance(last, Tag) and last.contents:
        last = last.contents[-1]
    return last.next_element  # type: ignore[attr-defined]


def _span(cell: Tag, name: str) -> int:
    """A cell's colspan or rowspan; rowspan="0" (to the end of the table) is the most a cell may cover."""
    try:
        span = int(str(cell.get(name, "1")).strip() or 1)
    except ValueError:
        return 1
    return MAX_SPAN if span == 0 and name == "rowspan" else max(span, 1)


def _html_table_lines(table: Tag) -> list[str]:
    """A <table>'s caption, then its rows written with their header row (`ingest.tables`): a
    cell merged over columns (colspan) and over rows (rowspan) as `ingest.tables.layout` says;
    a table nested in a cell is read as that cell's text."""
    out = []
    caption = table.find("caption")
    if caption is not None and caption.find_parent("table") is table and (text := caption.get_text(" ", strip=True)):
        out.append(text)
    rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    cells = [
        [Cell(c.get_text(" ", strip=True), _span(c, "colspan"), _span(c, "rowspan"))
         for c in tr.find_all(["td", "th"], recursive=False)]
        for tr in rows
    ]
    out.extend(table_lines(layout(cells)))
    return out


def html_lines(soup: BeautifulSoup) -> list[tuple[str | None, str]]:
    """(heading, line) pairs in document order; table rows become lines of cells written with
    their header row ("구분: 2025년 | 예산: 12.5", `ingest.tables`).

    A <br> is a soft line break: it stays a "\n" inside its paragraph's line, which
    `group_lines` marks for reflow (a sentence cut by it is joined again, list lines are not).
    Follows the `next_element` chain instead of recursing, so 10,000 nested <div>s are fine.
    "<h2>휴가</h2><p>연차휴가는 15일이다.</p>" → [("휴가", "연차휴가는 15일이다.")]
    "<p>연차휴가는 입사 1년 후<br>15일이다.</p>" → [(None, "연차휴가는 입사 1년 후\n15일이다.")]
    """
    lines: list[tuple[str | None, str]] = []
    heading: str | None = None
    buffer: list[str] = []  # strings since the last break
    broken: list[str] = []  # the paragraph's earlier lines, each ended by a <br>

    def soft_break() -> None:
        broken.append(" ".join(" ".join(buffer).split()))
        buffer.clear()

    def flush() -> None:
        soft_break()
        line = "\n".join(broken).strip("\n")
        if line:
            lines.append((heading, line))
        broken.clear()

    node = soup.contents[0] if soup.contents else None
    while node is not None:
        if isinstance(node, Tag):
            name = node.name.lower()
            if name in _HTML_SKIP:
                node = _after(node)
                continue
            if name in _HTML_HEADINGS or name in ("tr", "table"):
                flush()
                if name == "table":
                    lines.extend((heading, line) for line in _html_table_lines(node))
                elif name == "tr":  # a row outside any table
                    cells = [c.get_text(" ", strip=True) for c in node.find_all(["td", "th"], recursive=False)]
                    lines.append((heading, " | ".join(cells)))
                else:
                    heading = node.get_text(" ", strip=True) or heading
                node = _after(node)
                continue
            if name == "br":
                soft_break()
            elif name in _HTML_BREAKS:
                flush()
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            buffer.append(str(node))
        node = node.next_element
    flush()
    return lines


def load_html(path: Path, data: bytes, limits: LoadLimits) -> tuple[str | None, list[Block]]:
    """Visible text of an HTML page, one Block per heading section; title = <title> or first heading."""
    try:
        soup = BeautifulSoup(data, "lxml")
        title_tag = soup.find("title")
        title = title_tag.get_text(" ", strip=True) if title_tag else None
        lines = html_lines(soup)
    except RecursionError as exc:
        raise LoadError(path, "HTML nested too deeply to parse") from exc
    # The HTML parser accepts any bytes, so random data would be indexed as text of U+FFFD and
    # control characters; apply the same test as plain text to what would be indexed.
    if looks_binary("\n".join(line for _, line in lines)):
        raise LoadError(path, "binary data, not HTML")
    blocks = group_lines(lines)
    return title or next((b.heading for b in blocks if b.heading), None), blocks


def _is_html(probe) -> bool:
    return probe.text_start.startswith((b"<!doctype html", b"<html"))


register(Format("HTML page", (".html", ".htm"), load=load_html, text=True,
                magic=(Magic("html", "an HTML page", _is_html),)))
