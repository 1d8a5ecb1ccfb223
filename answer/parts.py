"""Split a question into the parts an answer must cover, each with its words and what it asks for.

split_question(kiwi, "출장 숙박비 한도는 얼마이며, 일비는 하루 얼마인가요?")
  -> [Part("출장 숙박비 한도는 얼마", asks="amount"), Part("일비는 하루 얼마인가요?", asks="amount")]
split_question(kiwi, "연차휴가와 병가는 각각 며칠인가요?")
  -> [Part("연차휴가는 각각 며칠인가요?", asks="count"), Part("병가는 각각 며칠인가요?", asks="count")]

Cuts fall where Korean joins two questions: a clause that already asks something and ends in
a connective ending ("…얼마이며", "…무엇이고", "…활용되는지,"), the conjunctions 그리고/또한,
a question mark inside the text, and a coordination of nouns ("A와 B는 각각 …", "A, B, C의 …")
when the question asks about each of them (각각, or an interrogative after the nouns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Content morphemes (Kiwi tags) a part is matched on.
TERM_TAGS = frozenset({"NNG", "NNP", "NR", "SN", "SL", "SH", "XR", "VV", "VA", "VV-R", "VA-R", "VV-I", "VA-I"})
LIGHT = frozenset({"하", "되", "있", "같", "이", "보", "주", "받", "않", "없", "말", "아니", "것", "수", "등", "때",
                   "알리", "설명", "알", "궁금", "내용", "무엇", "어떻", "어떠", "알려주", "경우", "가", "오"})
# Interrogatives and what kind of answer each asks for.
ASKS = {
    "며칠": "count", "몇": "count", "얼마": "amount", "얼마나": "amount",
    "언제": "date", "누구": "person", "어디": "place",
}
OPEN_INTERROGATIVES = frozenset({"무엇", "뭐", "어떻", "어떠", "어느", "무슨", "어떤", "왜"})
# Interrogatives that stand where an argument of the clause would ("무엇이", "누구를", "어디에서", "몇 명").
_ARGUMENT_INTERROGATIVES = frozenset({"무엇", "뭐", "누구", "어디", "몇", "무슨", "어느", "어떤"})
# The labels documents put before such answers ("일시: 2025. 3. 14.", "장소: 본사 12층"): a unit
# holding one answers that kind of part better (optional terms: counted only where found).
ASK_LABELS = {
    "date": frozenset({"일시", "일자", "날짜", "기간", "기한", "시기"}),
    "place": frozenset({"장소", "위치"}),
    "person": frozenset({"담당자", "참석자", "대상자", "책임자"}),
}
_CUT_ENDINGS = frozenset({"며", "으며", "고", "는지", "ㄴ지", "은지", "지", "ᆫ지", "나", "거나"})
_CONJUNCTIONS = frozenset({"그리고", "또한", "아울러", "또"})
_NOUN_TAGS = ("NNG", "NNP", "NR", "SN", "SL", "SH", "XSN", "NNB")
# Determiners that point back at the document itself: "이 사업", "본 계약", "그 회의", "동 규정".
_DEICTIC = frozenset({"이", "그", "저", "본", "동", "당", "해당"})


@dataclass(frozen=True)
class Part:
    """One thing the question asks: its text, its content words and the answer type it wants.

    asks: "count" (며칠, 몇), "amount" (얼마), "date" (언제), "person" (누구), "place" (어디), or None.
    """

    text: str
    terms: frozenset[str]
    asks: str | None = None
    # terms a determiner points back at the document with ("이 사업의 기대 효과": 사업): the
    # source seldom repeats them ("□ 기대 효과 / ○ 불량률 15% 감소"), so they may be missing
    optional: frozenset[str] = frozenset()
    # labels a document puts before the kind of answer asked ("일시", "장소"): not the question's
    # words, yet a unit holding one is likelier the answer (selection counts them where found)
    labels: frozenset[str] = frozenset()
    # the word right after an interrogative that stands as an argument ("무엇이 떨어지는" -> 떨어지,
    # "몇 등급으로" -> 등급, "어디에서 열리나요" -> 열리): the relation asked about; a drafted
    # sentence that leaves it out while its source states it most likely left the answer out too
    focus: frozenset[str] = frozenset()


def split_question(kiwi, question: str) -> list[Part]:
    """The parts of `question` (one part when nothing joins two questions)."""
    tokens = list(kiwi.tokenize(question))
    pieces = _clause_pieces(question, tokens)
    parts: list[Part] = []
    for a, b in pieces:
        sub = [t for t in tokens if t.start >= a and t.start + t.len <= b]
        for text, toks in _coordinated(question, a, b, sub):
            for one, one_toks in _per_interrogative(text, toks):
                part = _part(one, one_toks)
                if part.terms or part.asks:
                    parts.append(part)
    if not parts:
        return [_part(question, tokens)]
    return _dedupe(parts)


def _part(text: str, tokens: Sequence) -> Part:
    # a number with its counter is one term ("제3차" -> "3차", not any 3: "3. 제3호 안건")
    counted = {i for i, (t, nxt) in enumerate(zip(tokens, tokens[1:]))
               if t.tag == "SN" and nxt.tag in ("NNB", "NNG") and nxt.start == t.start + t.len}
    terms = frozenset(
        (t.form + tokens[i + 1].form if i in counted else t.form).lower()
        for i, t in enumerate(tokens)
        if t.tag in TERM_TAGS and t.form not in LIGHT and t.form not in ASKS and t.form not in OPEN_INTERROGATIVES
        and not (i > 0 and i - 1 in counted)
    )
    asks = next((ASKS[t.form] for t in tokens if t.form in ASKS), None)
    optional = frozenset(
        t.form.lower() for prev, t in zip(tokens, tokens[1:])
        if prev.form in _DEICTIC and prev.tag in ("MM", "NNG") and t.tag in ("NNG", "NNP")
    ) & terms
    if optional == terms:
        optional = frozenset()  # "이 제도는 무엇인가요?": the only words asked are needed
    return Part(text.strip(" ,"), terms, asks, optional, ASK_LABELS.get(asks or "", frozenset()) - terms,
                _focus(tokens, terms))


def _focus(tokens: Sequence, terms: frozenset[str]) -> frozenset[str]:
    """The terms right after an argument interrogative and its particles (see `Part.focus`)."""
    out = set()
    for i, t in enumerate(tokens):
        if t.form not in _ARGUMENT_INTERROGATIVES:
            continue
        j = i + 1
        while j < len(tokens) and tokens[j].tag.startswith("J"):
            j += 1
        if j < len(tokens) and tokens[j].form.lower() in terms:
            out.add(tokens[j].form.lower())
    return frozenset(out)


def _per_interrogative(text: str, tokens: Sequence) -> list[tuple[str, list]]:
    """A clause asking two kinds of thing ("언제, 어디서 열렸나요?", "누가, 언제까지 제출하나요?")
    as one clause per interrogative, the others left out: "…는 언제 열렸나요?", "…는 어디서
    열렸나요?"; otherwise the clause itself."""
    asking = [i for i, t in enumerate(tokens) if t.form in ASKS]
    if len({ASKS[tokens[i].form] for i in asking}) < 2:
        return [(text, list(tokens))]
    base = tokens[0].start if tokens else 0
    out = []
    for keep in asking:
        drop: list[tuple[int, int]] = []  # [start, end) in text of the other interrogatives with their particles and comma
        for i in asking:
            if i == keep:
                continue
            j = i + 1
            while j < len(tokens) and tokens[j].tag.startswith(("J", "SP")):
                j += 1
            end = tokens[j].start - base if j < len(tokens) else len(text)
            drop.append((tokens[i].start - base, end))
        one = text
        for a, b in sorted(drop, reverse=True):
            one = one[:a] + one[b:]
        out.append((" ".join(one.replace(" ,", ",").split()).replace(", ", " ").strip(" ,"),
                    [t for k, t in enumerate(tokens) if not any(a <= t.start - base < b for a, b in drop)]))
    return out


def _asks_something(tokens: Sequence) -> bool:
    return any(t.form in ASKS or t.form in OPEN_INTERROGATIVES for t in tokens) or any(
        t.tag == "EC" and t.form in ("는지", "ㄴ지", "은지", "ᆫ지") for t in tokens
    )


def _clause_pieces(question: str, tokens: Sequence) -> list[tuple[int, int]]:
    """[start, end) character ranges of the question's clauses that each ask something."""
    cuts: list[int] = []
    start_tok = 0
    for i, t in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        rest = tokens[i + 1 :]
        if not rest or not any(r.tag in TERM_TAGS for r in rest):
            break
        here = tokens[start_tok : i + 1]
        cut_at = None
        if t.tag == "EC" and t.form in _CUT_ENDINGS and (nxt is None or nxt.tag != "VX") and _asks_something(here):
            cut_at = t.start + t.len
        elif t.tag in ("MAJ", "MAG") and t.form in _CONJUNCTIONS and any(h.tag in TERM_TAGS for h in here[:-1]):
            cut_at = t.start
        elif t.tag == "SF" and t.form in ("?", "？"):
            cut_at = t.start + t.len
        if cut_at is not None:
            cuts.append(cut_at)
            start_tok = i + 1
    bounds = [0, *cuts, len(question)]
    out = []
    for a, b in zip(bounds, bounds[1:]):
        piece = question[a:b]
        for conj in sorted(_CONJUNCTIONS, key=len, reverse=True):  # "그리고 어떤 방법이" -> "어떤 방법이"
            stripped = piece.lstrip(" ,")
            if stripped.startswith(conj + " "):
                a += len(piece) - len(stripped) + len(conj)
                piece = question[a:b]
        if piece.strip(" ,.?"):
            out.append((a, b))
    return out


def _coordinated(question: str, a: int, b: int, tokens: Sequence) -> list[tuple[str, list]]:
    """A clause with coordinated nouns ("연차휴가와 병가는 각각 며칠") as one clause per noun
    phrase, when it asks about each; otherwise the clause itself."""
    whole = [(question[a:b], list(tokens))]
    each = any(t.form == "각각" for t in tokens)
    joins = [i for i, t in enumerate(tokens) if (t.tag == "JC" and t.form in ("와", "과", "랑", "이랑"))
             or (t.form == "및" and t.tag in ("MAJ", "MAG", "NNG"))
             or (t.tag == "SP" and 0 < i < len(tokens) - 1 and tokens[i - 1].tag in _NOUN_TAGS
                 and tokens[i + 1].tag in _NOUN_TAGS)]
    if not joins:
        return whole
    first, last = joins[0], joins[-1]
    # the coordinated noun phrases: nouns before the first join ... nouns after the last one
    lo = first
    while lo > 0 and tokens[lo - 1].tag in _NOUN_TAGS:
        lo -= 1
    hi = last + 1
    while hi < len(tokens) and tokens[hi].tag in _NOUN_TAGS:
        hi += 1
    if lo == first or hi == last + 1:
        return whole
    after = tokens[hi:]
    if not (each or any(t.form in ASKS or t.form in OPEN_INTERROGATIVES for t in after)):
        return whole
    # Noun phrases between the joins
    phrases: list[tuple[int, int]] = []  # token ranges
    s = lo
    for j in [*joins, hi]:
        if j > s:
            phrases.append((s, j))
        s = j + 1
    if len(phrases) < 2:
        return whole
    # "연차 휴가와 병가": with a shared head on the left ("출장 숙박비와 일비"), keep it for each
    head_start = tokens[phrases[0][0]].start
    tail_start = tokens[hi].start if hi < len(tokens) else b
    out = []
    for p, q in phrases:
        text = question[a:head_start] + question[tokens[p].start : tokens[q - 1].start + tokens[q - 1].len] + question[tail_start:b]
        out.append((text, [*tokens[:lo], *tokens[p:q], *tokens[hi:]]))
    return out


def _dedupe(parts: list[Part]) -> list[Part]:
    out: list[Part] = []
    for p in parts:
        if any(p.terms == q.terms and p.asks == q.asks for q in out):
            continue
        out.append(p)
    return out
