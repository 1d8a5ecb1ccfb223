"""Numbers with Korean units, normalized so different spellings of one fact compare equal.

extract_quantities("예산은 1,000억원이고 기간은 3년마다 갱신, 증가율 4%")
  -> [Quantity(1e11, "원"), Quantity(3, "년"), Quantity(4, "%")]
extract_quantities("1천억 원")            -> [Quantity(1e11, "원")]
extract_quantities("2024. 1. 1.")         -> [Quantity(2024, "년"), Quantity(1, "월"), Quantity(1, "일")]
extract_quantities("두 달 동안")          -> [Quantity(2, "개월")]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SMALL = {"십": 10, "백": 100, "천": 1000}
BIG = {"만": 10**4, "억": 10**8, "조": 10**12}

# Longest spellings first so "개월" wins over "개" and "%p" over "%".
_UNIT_ALIASES: dict[str, str] = {
    "퍼센트포인트": "%p", "%p": "%p", "%포인트": "%p", "퍼센트": "%", "프로": "%", "%": "%",
    "개월": "개월", "달": "개월", "주일": "주", "주": "주", "년도": "년", "년": "년", "해": "년",
    "월": "월", "일": "일", "시간": "시간", "시": "시", "분": "분", "초": "초",
    "원": "원", "달러": "달러", "불": "달러", "엔": "엔", "유로": "유로", "위안": "위안",
    "명": "명", "사람": "명", "개국": "개국", "개소": "개소", "개": "개", "건": "건", "회": "회",
    "번째": "번째", "번": "번", "차례": "번", "차": "차", "배": "배", "세": "세", "살": "세",
    "층": "층", "호": "호", "위": "위", "등": "등", "점": "점", "장": "장", "권": "권", "대": "대",
    "곳": "곳", "가지": "가지", "편": "편", "종": "종", "석": "석", "표": "표", "킬로미터": "km",
    "km": "km", "kg": "kg", "cm": "cm", "mm": "mm", "m": "m", "g": "g", "톤": "t", "t": "t",
    "등급": "등급", "단계": "단계", "종류": "종류", "계급": "계급",
    "평": "평", "㎡": "㎡", "제곱미터": "㎡", "gb": "gb", "mb": "mb", "tb": "tb", "bp": "bp",
}
_UNITS = sorted(_UNIT_ALIASES, key=len, reverse=True)
_UNIT_RE = "|".join(re.escape(u) for u in _UNITS)

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
# One part: digits, then optional 십/백/천 and 만/억/조 ("1천억", "3만", "2.5조", "1,000억").
_PART = rf"(?P<num>{_NUM})\s*(?P<small>[십백천])?\s*(?P<big>[만억조])?"
_PART_RE = re.compile(_PART)
# Syllables that start a particle or copula after a number ("3이", "5는", "10으로", "7이다"): no unit.
_PARTICLE_STARTS = frozenset("이가은는을를의에와과도만로으부까보처며나라요야여")
_UNIT_AFTER = re.compile(rf"\s*(?P<unit>{_UNIT_RE})(?![A-Za-z])", re.IGNORECASE)
_DATE_RE = re.compile(r"(?<!\d)(\d{4})\s*[./-]\s*(\d{1,2})\s*[./-]\s*(\d{1,2})(?!\d)\.?")
# Native Korean counts before a counter: "두 달", "세 차례", "한 명", "아홉 등급".
_NATIVE = {"한": 1, "두": 2, "세": 3, "네": 4, "다섯": 5, "여섯": 6, "일곱": 7, "여덟": 8,
           "아홉": 9, "열": 10, "스무": 20}
_NATIVE_RE = re.compile(
    r"(?<![가-힣])(?P<n>다섯|여섯|일곱|여덟|아홉|스무|한|두|세|네|열)\s+"
    r"(?P<unit>달|해|번|차례|명|사람|개|가지|곳|권|대|장|시간|살|등급|단계|종류|계급)"
    rf"(?![가-힣](?<![{''.join(sorted(_PARTICLE_STARTS))}]))"  # a particle may follow: "아홉 등급이다"
)


@dataclass(frozen=True)
class Quantity:
    """A normalized number and its unit ("" when the number stands alone)."""

    value: float
    unit: str
    text: str = ""

    def matches(self, other: Quantity) -> bool:
        """Same value, and the same unit unless one side has none (a bare table cell).

        Quantity(15, "일").matches(Quantity(15, "")) -> True; with Quantity(15, "주") -> False.
        """
        if abs(self.value - other.value) > 1e-9 * max(1.0, abs(self.value)):
            return False
        if self.unit == other.unit or not self.unit or not other.unit:
            return True
        # "AD226년" vs "AD 226년": a name's number matches the same number under another unit,
        # but not another name's ("CA3" vs "DG3").
        at_self, at_other = self.unit.startswith("@"), other.unit.startswith("@")
        return at_self != at_other


def _part_value(m: re.Match[str]) -> tuple[float, int]:
    value = float(m.group("num").replace(",", ""))
    if m.group("small"):
        value *= SMALL[m.group("small")]
    big = BIG[m.group("big")] if m.group("big") else 1
    return value * big, big


def extract_quantities(text: str) -> list[Quantity]:
    """All quantities in `text`, in order of appearance (see the module docstring)."""
    found: list[tuple[int, Quantity]] = []
    taken: list[tuple[int, int]] = []
    for m in _DATE_RE.finditer(text):
        y, mo, d = (int(g) for g in m.groups())
        if 1 <= mo <= 12 and 1 <= d <= 31:
            for value, unit in ((y, "년"), (mo, "월"), (d, "일")):
                found.append((m.start(), Quantity(float(value), unit, m.group(0))))
            taken.append(m.span())
    pos = 0
    while True:
        m = _PART_RE.search(text, pos)
        if not m:
            break
        pos = m.end()
        if any(a <= m.start() < b for a, b in taken):
            continue
        start = m.start()
        ident = _identifier_prefix(text, start)
        if ident:  # "CA3", "AD229", "A4": part of a name; compared as that name's number
            found.append((start, Quantity(float(m.group("num").replace(",", "")), "@" + ident, text[start - len(ident) : m.end()])))
            continue
        value, big = _part_value(m)
        end = m.end()
        # "1조 2,000억": keep adding parts while each one's big unit is smaller than the last.
        while big > 1:
            nxt = _PART_RE.match(text, _skip_space(text, end))
            if not nxt or not nxt.group("big") and not _UNIT_AFTER.match(text, nxt.end()):
                break
            part, part_big = _part_value(nxt)
            if part_big >= big:
                break
            value += part
            big = part_big
            end = nxt.end()
        unit = ""
        u = _UNIT_AFTER.match(text, end)
        if u:
            unit = _UNIT_ALIASES[u.group("unit").lower()]
            end = u.end()
        elif end < len(text) and "가" <= text[end] <= "힣" and text[end] not in _PARTICLE_STARTS:
            unit = text[end]  # a counter we do not list ("6량", "3척"): still not interchangeable
            end += 1
        pos = end
        found.append((start, Quantity(value, unit, text[start:end])))
    for m in _NATIVE_RE.finditer(text):
        found.append((m.start(), Quantity(float(_NATIVE[m.group("n")]), _UNIT_ALIASES[m.group("unit")], m.group(0))))
    found.sort(key=lambda item: item[0])
    return [q for _, q in found]


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] == " ":
        i += 1
    return i


def _identifier_prefix(text: str, i: int) -> str:
    """Latin letters glued before the digits ("CA" of "CA3"), lowercased; "" if none."""
    j = i
    while j > 0 and text[j - 1].isascii() and text[j - 1].isalpha():
        j -= 1
    return text[j:i].lower()


def missing_quantities(claim: str, evidence: str) -> list[Quantity]:
    """Quantities of `claim` that no quantity of `evidence` matches, each used once.

    missing_quantities("연차는 16일이다", "연차는 15일을 준다") -> [Quantity(16, "일")]
    missing_quantities("2012년과 2012년", "2010년과 2012년") -> [Quantity(2012, "년")]
    """
    return unmatched(extract_quantities(claim), extract_quantities(evidence))


# "(단위: 명, %, 만원)", "［단위 : 억원］": the units of a table's bare figures.
_DECLARED = re.compile(r"단위\s*[:：]\s*([^)\]］〉>\n]{1,40})")
_NEXT_TABLE = re.compile(r"(?m)^\s*[<\[［〈]\s*(?:표|그림|도표)")


def declared_units(text: str, before: int) -> list[Quantity]:
    """The units the last "단위:" declaration in `text[:before]` names, each as the quantity one
    of its figures stands for: declared_units("(단위: 명, 만원)\n…", 20) -> [Quantity(1, "명"),
    Quantity(10000, "원")]; [] when there is none."""
    found = None
    for m in _DECLARED.finditer(text, 0, before):
        found = m
    if found is None or _NEXT_TABLE.search(text, found.end(), before):
        return []  # none, or it belongs to an earlier table: a later caption starts another
    out = []
    for name in re.split(r"[,、/·]", found.group(1)):
        got = extract_quantities("1" + name.strip())
        if len(got) == 1 and got[0].unit:
            out.append(got[0])
    return out


def in_declared_units(quantities: list[Quantity], units: list[Quantity]) -> list[Quantity]:
    """A table row's bare figures read in the table's declared units (any of them, each scaled:
    "8,450" under "단위: 만원" is 8,450만원, not 8,450원); figures with a unit stay as they are.

    in_declared_units([Quantity(8450, "")], [Quantity(10000, "원")]) -> [Quantity(84500000, "원")]
    """
    if not units:
        return quantities
    out = []
    for q in quantities:
        if q.unit:
            out.append(q)
        else:
            out.extend(Quantity(q.value * u.value, u.unit, q.text) for u in units)
    return out


def unmatched(claimed: list[Quantity], available: list[Quantity]) -> list[Quantity]:
    """Match each claimed quantity to a distinct available one (exact units first)."""
    pool = list(available)
    missing = []
    for q in sorted(claimed, key=lambda q: not q.unit):  # bare numbers take what is left
        exact = next((h for h in pool if h.value == q.value and h.unit == q.unit), None)
        found = exact or next((h for h in pool if q.matches(h)), None)
        if found is None:
            missing.append(q)
        else:
            pool.remove(found)
    return missing


# "header: value"; a header may hold a parenthesis with a colon ("금액(단위: 원): 12,000")
_CELL = re.compile(r"^\s*((?:[^:|()]|\([^()|]*\)){1,40}?)\s*:\s*(.+?)\s*$")
_HEADER_WORD = re.compile(r"[0-9A-Za-z가-힣.]{2,}")
_FIGURE = re.compile(r"\d+(?:\.\d+)?")


def wrong_column(claim: str, claimed: list[Quantity], rows: list[str]) -> bool:
    """The claim takes a figure from one column of a table row while naming another column's
    header: "2025년 예산은 3.1억원" on "구분: 재무팀 | 2024년 예산: 3.1 | 2025년 예산: 3.5".

    Rows are written by ingest.tables ("header: value | header: value"). A header is named when
    a word of it that no other header of its row has appears in the claim ("2025년"). Wrong when
    some claimed figure sits only under headers the claim does not name while it names another
    header of a row holding that figure; a claim that names no header is not judged.

    wrong_column("2025년 예산은 3.1억원", extract_quantities("2025년 예산은 3.1억원"),
                 ["구분: 재무팀 | 2024년 예산: 3.1 | 2025년 예산: 3.5"]) -> True
    """
    tables = []
    for row in rows:
        cells = [(m.group(1), m.group(2)) for c in row.split("|") if (m := _CELL.match(c))]
        if len(cells) >= 2 and len(cells) * 2 > row.count("|") + 1:
            words = [set(_HEADER_WORD.findall(h)) for h, _ in cells]
            own = [w - set().union(*(words[:i] + words[i + 1:])) for i, w in enumerate(words)]
            tables.append([(any(t in claim for t in own[i]), v) for i, (_, v) in enumerate(cells)])
    if not tables:
        return False

    def holds(value: str, q: Quantity) -> bool:
        # the cell's figure as written ("3.1" under "예산(억원)" is the claim's "3.1억원"), or the same quantity
        figure = _FIGURE.search(q.text.replace(",", ""))
        return bool(figure and figure.group(0) in _FIGURE.findall(value.replace(",", ""))) or any(
            q.matches(x) for x in extract_quantities(value))

    for q in claimed:
        holders = [(named, row) for row in tables for named, value in row if holds(value, q)]
        if not holders or any(named for named, _ in holders):
            continue
        # a named header of the row that holds none of the claimed figures: the claim put this
        # figure under it ("2025년 … 3.1" where 2025년 holds 3.5); when every named header holds
        # one of the claim's figures, the figures are each in their column ("2024년과 2025년 …
        # 455억원과 612억원, 34.5% 늘었다")
        if any(named and not any(holds(value, c) for c in claimed) for _, row in holders for named, value in row):
            return True
    return False


_HEADER_UNIT = re.compile(r"\(\s*(?:단위\s*[:：]\s*)?([^()]{1,12})\)\s*$")


def header_unit_figures(row: str) -> list[Quantity]:
    """The figures of a table row's cells read in the unit their header names in parentheses:
    "2025년 예산(억원): 3.5" holds 3.5억원 (besides the bare 3.5 that extract_quantities sees).

    header_unit_figures("구분: 재무팀 | 예산(억원): 3.5 | 인원(명): 12")
    -> [Quantity(350000000.0, "원", "3.5"), Quantity(12.0, "명", "12")]
    """
    out = []
    for cell in row.split("|"):
        m = _CELL.match(cell)
        unit = _HEADER_UNIT.search(m.group(1)) if m else None
        if unit is None:
            continue
        per = extract_quantities("1" + unit.group(1).strip())
        if len(per) != 1 or not per[0].unit:
            continue
        out += in_declared_units([q for q in extract_quantities(m.group(2)) if not q.unit], per)
    return out
