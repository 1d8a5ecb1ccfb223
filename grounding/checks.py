"""The individual checks of a claim sentence against a span of source text.

Each check is a pure function over Kiwi analyses (`Analysis`), so it can be tested alone:
  coverage(analyze("연차휴가는 15일이다"), analyze("연차휴가는 15일을 준다")) -> 1.0
  negation_count(analyze("재택근무는 허용되지 않는다")) -> 1
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import cached_property

# Content morphemes: nouns, proper nouns, numerals, foreign words, hanja, verb/adjective stems, roots.
CONTENT_TAGS = frozenset({"NNG", "NNP", "NR", "SL", "SH", "VV", "VA", "XR", "SN"})
ENTITY_TAGS = frozenset({"NNP", "SL", "SH"})
# Stems that carry grammar rather than content ("하다", "되다", "있다", "같다", "이다").
LIGHT_STEMS = frozenset({"하", "되", "있", "같", "이", "보", "주", "받", "않", "없", "말", "아니", "것", "수", "등", "때"})
# Question words Kiwi tags as nouns: a source never contains "며칠", it contains "15일".
INTERROGATIVES = frozenset({"며칠", "얼마", "얼마나", "언제", "어디", "무엇", "누구", "뭐", "몇", "어느", "무슨"})
# Negation markers, as (form, tag) pairs and noun forms.
NEGATION_MORPHEMES = frozenset(
    {("않", "VX"), ("안", "MAG"), ("못", "MAG"), ("못하", "VX"), ("없", "VA"), ("아니", "VCN"),
     ("말", "VX"), ("금하", "VV"), ("불가", "XR")}
)
NEGATION_NOUNS = frozenset(
    {"불가", "불가능", "금지", "불허", "불인정", "불가하", "미지급", "미적용", "미해당", "미실시",
     "불이행", "비해당", "제외", "불필요", "무효", "없음", "미만"}
)
NEGATION_PREFIXES = frozenset({"불", "미", "비", "무"})  # XPN: 불+허용, 미+지급 ...


@dataclass(frozen=True)
class Morph:
    form: str
    tag: str
    start: int
    end: int


@dataclass(frozen=True)
class Analysis:
    """A text and its Kiwi morphemes (offsets into `text`)."""

    text: str
    morphs: tuple[Morph, ...]

    def content(self) -> list[Morph]:
        """Content morphemes worth checking: "연차휴가는 15일을 준다" -> 연차, 휴가, 15."""
        return [
            m for m in self.morphs
            # Numbers and negation have their own checks; here they would only add noise.
            if m.tag in CONTENT_TAGS and m.tag != "SN" and m.form not in LIGHT_STEMS
            and m.form not in NEGATION_NOUNS and m.form not in INTERROGATIVES
        ]

    def entities(self) -> list[Morph]:
        return [m for m in self.morphs if m.tag in ENTITY_TAGS and len(m.form) > 1]

    def slice(self, start: int, end: int) -> Analysis:
        """The analysis of text[start:end] (offsets rebased), without re-running Kiwi."""
        starts = self._starts
        if starts is None:  # morphemes out of order: look at every one
            first, candidates = 0, self.morphs
        else:  # a passage of 100k characters has ~50k morphemes and ~1,000 sentences to slice
            first = bisect_left(starts, start)
            candidates = self.morphs[first : bisect_right(starts, end, first)]
        morphs = tuple(
            Morph(m.form, m.tag, m.start - start, m.end - start)
            for m in candidates
            if m.start >= start and m.end <= end
        )
        return Analysis(self.text[start:end], morphs)

    @cached_property
    def _starts(self) -> list[int] | None:
        """Morpheme start offsets if they never decrease (Kiwi's order), else None."""
        starts = [m.start for m in self.morphs]
        return starts if all(a <= b for a, b in zip(starts, starts[1:])) else None


def analyze(kiwi, text: str) -> Analysis:  # kiwi: kiwipiepy.Kiwi
    """Kiwi morphemes of `text` with character offsets."""
    tokens = kiwi.tokenize(text)
    return Analysis(text, tuple(Morph(t.form, t.tag, t.start, t.start + t.len) for t in tokens))


def _key(m: Morph) -> str:
    return m.form.lower()


def content_keys(analysis: Analysis) -> set[str]:
    """Lower-cased content words and numbers: content_keys(analyze("연차휴가는 15일")) -> {"연차", "휴가", "15"}."""
    return {_key(m) for m in analysis.content()} | {m.form for m in analysis.morphs if m.tag == "SN"}


def covered(claim_morph: Morph, evidence: Analysis, evidence_keys: set[str]) -> bool:
    """A content morpheme is covered when the evidence has it as a morpheme or, for a noun of
    two or more characters, inside its text (compounds split differently: 재택근무 / 재택+근무)."""
    key = _key(claim_morph)
    if key in evidence_keys:
        return True
    if claim_morph.tag.startswith("N") or claim_morph.tag in ("SL", "SH", "XR"):
        return len(key) >= 2 and key in evidence.text.lower()
    return False


def coverage(claim: Analysis, evidence: Analysis) -> float:
    """Share of the claim's content morphemes found in the evidence, weighted by length
    (up to 4 characters). No content at all -> 1.0.

    coverage(analyze("연차휴가는 15일입니다"), analyze("15일의 유급 연차휴가를 준다")) -> 1.0
    """
    keys = {_key(m) for m in evidence.morphs}
    total = hit = 0.0
    for m in claim.content():
        weight = min(len(m.form), 4)
        total += weight
        if covered(m, evidence, keys):
            hit += weight
    return 1.0 if total == 0 else hit / total


PREDICATE_TAGS = frozenset({"VV", "VA", "VX", "VCP", "VCN", "XSV", "XSA"})


# Tags a sentence cannot end with: particles, connective endings, conjunctions, a comma.
CUT_END_TAGS = ("JKS", "JKC", "JKG", "JKO", "JKB", "JKV", "JKQ", "JX", "JC", "EC", "MAJ", "SP", "XPN")


def cut_short(claim: Analysis) -> bool:
    """A sentence that stops midway: its last morpheme (closing punctuation aside) is a particle,
    a connective ending or a conjunction. cut_short(analyze("… 뇌물 파동이 일어난 후에")) -> True."""
    tail = [m for m in claim.morphs if m.tag not in ("SF", "SS", "SSC", "SSO", "SE", "SW")]
    return bool(tail) and tail[-1].tag in CUT_END_TAGS


def is_fragment(claim: Analysis) -> bool:
    """A bare answer without a predicate: "15일", "이명박 [1]", "서울특별시 중구"."""
    return not any(m.tag in PREDICATE_TAGS for m in claim.morphs) and len(claim.content()) <= 3


def uncovered(claim: Analysis, evidence: Analysis) -> list[str]:
    keys = {_key(m) for m in evidence.morphs}
    return [m.form for m in claim.content() if not covered(m, evidence, keys)]


def negation_markers(analysis: Analysis) -> list[tuple[int, bool]]:
    """(morpheme index, adnominal?) of each negation marker (않/못/안/없/아니/말, 불가/금지/불허, 불-/미- ...).

    adnominal: the marker sits in a noun-modifying clause ("3개월이 지나지 않은 직원", "불가한 업무")
    and so describes a noun rather than what the sentence asserts.
    """
    morphs = analysis.morphs
    out = []
    for i, m in enumerate(morphs):
        if (
            (m.form, m.tag) in NEGATION_MORPHEMES
            or (m.tag.startswith("NN") and m.form in NEGATION_NOUNS)
            or (m.tag == "XPN" and m.form in NEGATION_PREFIXES)
        ):
            out.append((i, _adnominal(morphs, i)))
    return out


def negation_count(analysis: Analysis) -> int:
    """Negation markers that bear on the predicates: negation_count(analyze("허용되지 않는다")) -> 1."""
    return sum(not adnominal for _, adnominal in negation_markers(analysis))


def _adnominal(morphs: tuple[Morph, ...], i: int) -> bool:
    """True if morpheme i ends in an adnominal ending that modifies a following noun."""
    j = i + 1
    while j < len(morphs) and morphs[j].tag in ("EP", "XSV", "XSA", "VCP"):
        j += 1
    if j >= len(morphs) or morphs[j].tag != "ETM":
        return False
    nxt = morphs[j + 1] if j + 1 < len(morphs) else None
    # "…지 않는 것이다", "…할 수 없는 상태": nominalized predicates still assert the negation.
    return not (nxt is not None and nxt.tag == "NNB" and nxt.form in ("것", "수", "줄", "터"))


def clauses(analysis: Analysis) -> list[tuple[int, int]]:
    """[start, end) morpheme ranges of the clauses: split after a connective ending (EC not
    followed by an auxiliary verb, so "하지 않" stays whole) and at commas."""
    morphs = analysis.morphs
    cuts, start = [], 0
    for i, m in enumerate(morphs):
        nxt = morphs[i + 1] if i + 1 < len(morphs) else None
        if (m.tag == "EC" and not (nxt is not None and nxt.tag == "VX")) or m.tag == "SP":
            cuts.append((start, i + 1))
            start = i + 1
    if start < len(morphs):
        cuts.append((start, len(morphs)))
    out: list[tuple[int, int]] = []
    for a, b in cuts:
        # A clause without content ("…지 않으면 | 안 된다", "…하지 | 못했다") belongs to the previous one.
        if out and not any(_is_content(m) for m in morphs[a:b]):
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _is_content(m: Morph) -> bool:
    return m.tag in CONTENT_TAGS and m.tag != "SN" and m.form not in LIGHT_STEMS


def negation_consistent(claim: Analysis, evidence: Analysis) -> bool:
    """Same polarity on what the claim talks about.

    Only the evidence clauses sharing content with the claim count ("반응이 없고, 진행되지 않자 …"
    vs "진행되지 않자 …": the first clause is not the claim's). The predicates' negations must
    agree in parity ("않으면 안 된다" affirms); a noun-modifying negation the claim adds
    ("감독이 아니었던 …") must be in the evidence, while one it leaves out is mere omission.
    """
    keys = {_key(m) for m in claim.content()}
    spans = [
        (a, b) for a, b in clauses(evidence)
        if any(_key(m) in keys for m in evidence.morphs[a:b] if m.tag in CONTENT_TAGS)
    ]
    relevant = [(i, adn) for i, adn in negation_markers(evidence) if any(a <= i < b for a, b in spans)]
    claim_markers = negation_markers(claim)
    main_claim = sum(not adn for _, adn in claim_markers)
    main_evidence = sum(not adn for _, adn in relevant)
    return main_claim % 2 == main_evidence % 2 and (
        sum(adn for _, adn in claim_markers) <= sum(adn for _, adn in relevant)
    )


# Words that talk about an answer rather than give one ("…의 특징을 다음과 같이 상세히 설명합니다").
META_WORDS = frozenset({"설명", "다음", "상세", "상세히", "내용", "아래", "정리", "요약", "안내", "대하", "관하",
                        "말씀", "드리", "답변", "질문", "경우", "소개", "알리", "알", "확인", "문서", "출처",
                        "정보", "관련", "사항", "특징", "기능", "제공", "방법", "어떻", "궁금"})


_OPEN_ASKS = frozenset({"어떻", "어떠", "어떤", "왜", "어째서"})


def adds_nothing(claim: Analysis, question: Analysis) -> bool:
    """A sentence whose content words all come from the question (words about answering aside)
    and that states no number of its own adds nothing, however true it is:
    adds_nothing(analyze("아바톡의 특징을 다음과 같이 설명합니다"), analyze("아바톡의 특징은?")) -> True
    adds_nothing(analyze("연차휴가는 15일입니다"), analyze("연차휴가는 며칠인가요?")) -> False (15)

    Only for questions that ask for something (무엇, 얼마, 어떻게 …): to "재택근무가 허용되나요?"
    the restatement "재택근무는 허용됩니다" is the answer.
    """
    if not any(m.form in INTERROGATIVES or m.form in _OPEN_ASKS for m in question.morphs):
        return False
    asked = {_key(m) for m in question.morphs}
    asked_text = question.text.lower()
    for m in claim.morphs:
        if m.tag == "SN" and m.form not in asked_text:
            return False
    for m in claim.content():
        key = _key(m)
        if key in asked or key in META_WORDS or (len(key) >= 2 and key in asked_text):
            continue
        return False
    return True


def missing_entities(claim: Analysis, evidence: Analysis) -> list[str]:
    """Proper nouns / foreign words / hanja of the claim that the evidence never mentions."""
    text = evidence.text.lower()
    return [m.form for m in claim.entities() if m.form.lower() not in text]
