"""GroundingChecker.ground(..., should_stop=...): a long check can be stopped, and the hook changes nothing else."""

from __future__ import annotations


import pytest

from grounding import CheckCancelled, GroundingChecker, GroundingError, Passage
from grounding.checks import analyze
from grounding.errors import check_point
from grounding.prepare import BLOCK_CHARS, analyze_blocks, text_blocks


def rules(n: int, start: int = 0) -> str:
    """n distinct Korean rule sentences (~30 characters each), a line break every fifth."""
    out = []
    for i in range(start, start + n):
        out.append(f"제{i}조 직원은 {i % 28 + 1}일 이내에 {('휴가', '출장', '교육', '경조사')[i % 4]} 신청서를 제출한다.")
        out.append("\n" if i % 5 == 4 else " ")
    return "".join(out)


class CountingKiwi:
    """A Kiwi that counts the characters it is given: the work done between two check points
    is measured in characters analysed, not in seconds (a loaded CI machine stretches seconds)."""

    def __init__(self, kiwi):
        self._kiwi = kiwi
        self.chars = 0

    def __getattr__(self, name):
        target = getattr(self._kiwi, name)
        if not callable(target):
            return target

        def counted(text, *args, **kwargs):
            self.chars += len(text) if isinstance(text, str) else sum(len(t) for t in text)
            return target(text, *args, **kwargs)

        return counted


@pytest.fixture(scope="module")
def counting(shared_kiwi):
    return CountingKiwi(shared_kiwi)


@pytest.fixture(scope="module")
def checker(counting):
    checker = GroundingChecker(counting)
    checker.ground("연차휴가는 15일입니다.", [Passage("w", "연차휴가는 15일이다.")])  # Kiwi's first call loads its model
    return checker


@pytest.fixture(scope="module")
def huge():
    """Three passages of ~100,000 characters: a full check takes minutes on a CPU."""
    return [Passage(f"p{k}", rules(3000, 3000 * k)) for k in range(3)]


def test_should_stop_after_n_calls_stops_a_huge_check_early(checker, counting, huge):
    calls = []

    def should_stop():
        calls.append(counting.chars)
        return len(calls) > 5

    before = counting.chars
    with pytest.raises(CheckCancelled):
        checker.ground("제5조 직원은 6일 이내에 출장 신청서를 제출합니다.", huge, "출장 신청 기한은?", should_stop=should_stop)
    assert len(calls) == 6  # raised at the first True, nothing polled after it
    # a few blocks read (each block is split, then analysed), not the 300,000 characters
    assert counting.chars - before <= 6 * 2 * BLOCK_CHARS


@pytest.mark.parametrize("flip_after", [5_000, 150_000])  # in the first passage; in the middle one
def test_a_stop_lands_within_one_block_of_work(checker, counting, huge, flip_after):
    """Whenever should_stop() turns true, the next check point comes after at most one block of
    Kiwi work, whatever stage the check is in."""
    start = counting.chars
    polled = []

    def should_stop():
        polled.append(counting.chars - start)
        return polled[-1] > flip_after

    with pytest.raises(CheckCancelled):
        checker.ground("제5조 직원은 6일 이내에 출장 신청서를 제출합니다.", huge, "출장 신청 기한은?", should_stop=should_stop)
    gaps = [b - a for a, b in zip(polled, polled[1:])]  # characters analysed between check points
    assert len(polled) > 2 and max(gaps) <= BLOCK_CHARS + 100, max(gaps)
    assert flip_after < polled[-1] <= flip_after + BLOCK_CHARS + 100


def test_sentence_checks_and_the_fallback_are_stopped_too(checker):
    passages = [Passage("p", rules(200))]
    stop = []
    session = checker.session(passages, "출장 신청 기한은?", should_stop=lambda: bool(stop))
    assert session.add("제5조 직원은 6일 이내에 출장 신청서를 제출합니다.").supported
    stop.append(True)
    with pytest.raises(CheckCancelled):
        session.add("제8조 직원은 9일 이내에 교육 신청서를 제출합니다.")
    stop.clear()
    fallback = checker.session(passages, "출장 신청 기한은?", should_stop=lambda: bool(stop))
    stop.append(True)
    with pytest.raises(CheckCancelled):  # nothing supported: quoting the sources loops over every span
        fallback.finish()


def test_results_are_the_same_with_or_without_the_hook(checker):
    # several blocks of 4,000 characters: the blocked reading must equal the whole one
    passages = [Passage("a", rules(200)), Passage("b", rules(150, 200).replace("\n", " "), context="취업규칙 신청")]
    for draft, question in [
        ("제5조에 따라 직원은 6일 이내에 출장 신청서를 제출합니다. 제9조 직원은 99일 이내에 제출합니다.", "출장 신청 기한은?"),
        ("휴가는 무제한입니다.", "제201조 출장 신청 기한은?"),
    ]:
        plain = checker.ground(draft, passages, question)
        hooked = checker.ground(draft, passages, question, should_stop=lambda: False)
        assert plain == hooked
    assert plain.mode == "extractive" and plain.citations


def test_blocked_analysis_equals_the_whole_text(shared_kiwi, checker):
    for text in (rules(200), rules(200).replace("\n", " ")):
        assert len(text_blocks(text)) > 2
        spans, analysis = analyze_blocks(shared_kiwi, checker.splitter, text, lambda: None)
        assert spans == checker.splitter.split(text)
        assert analysis == analyze(shared_kiwi, text)


def test_text_blocks_cut_at_lines_then_sentences_then_spaces():
    assert text_blocks("가나다.\n라마바. 사아", size=8) == [(0, 5), (5, 12)]
    assert text_blocks("가나다. 라마바. 사아자차", size=10) == [(0, 10), (10, 14)]
    assert text_blocks("가나다 라마바 사아자차", size=6) == [(0, 4), (4, 8), (8, 12)]
    assert text_blocks("가" * 10, size=4) == [(0, 4), (4, 8), (8, 10)]
    assert text_blocks("", size=4) == [(0, 0)]


def test_check_point():
    check_point(None)()
    check_point(lambda: False)()
    with pytest.raises(CheckCancelled, match="should_stop"):
        check_point(lambda: True)()
    assert issubclass(CheckCancelled, GroundingError)
