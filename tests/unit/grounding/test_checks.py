"""The single checks: coverage, negation, entities."""

from __future__ import annotations

import pytest

from grounding.checks import analyze, coverage, is_fragment, missing_entities, negation_consistent, negation_count


@pytest.fixture(scope="module")
def a(shared_kiwi):
    return lambda text: analyze(shared_kiwi, text)


@pytest.mark.parametrize(
    "text, count",
    [
        ("재택근무는 허용된다.", 0),
        ("재택근무는 허용되지 않는다.", 1),
        ("재택근무는 불가하다.", 1),
        ("사내 흡연을 금지한다.", 1),
        ("USB 메모리를 사용할 수 없다.", 1),
        ("외부 반출을 할 수 없습니다.", 1),
        ("그는 회의에 못 갔다.", 1),
        ("보고서가 아니다.", 1),
        ("수당은 미지급이다.", 1),
        ("신고하지 않으면 안 된다.", 2),
    ],
)
def test_negation_markers(a, text, count):
    assert negation_count(a(text)) == count


def test_negation_polarity_compares_parity(a):
    assert negation_consistent(a("재택근무는 불가합니다."), a("재택근무는 허용되지 않는다."))
    assert not negation_consistent(a("재택근무는 허용됩니다."), a("재택근무는 허용되지 않는다."))
    # a double negation affirms
    assert negation_consistent(a("반드시 신고해야 한다."), a("신고하지 않으면 안 된다."))


def test_coverage_counts_content_morphemes(a):
    assert coverage(a("연차휴가는 15일입니다."), a("연차휴가는 15일을 준다.")) == 1.0
    assert coverage(a("세종대왕은 한글을 창제했다."), a("연차휴가는 15일을 준다.")) == 0.0
    partial = coverage(a("연차휴가와 병가를 준다."), a("연차휴가를 준다."))
    assert 0.0 < partial < 1.0


def test_coverage_accepts_compounds_split_differently(a):
    # Kiwi keeps "재택근무" whole here but the source spaces it; the text still contains it.
    assert coverage(a("재택근무는 금요일에 한다."), a("재택 근무는 금요일에 한다. 재택근무 신청")) == 1.0


def test_fragments_are_answers_without_a_predicate(a):
    assert is_fragment(a("15일"))
    assert is_fragment(a("이명박"))
    assert not is_fragment(a("연차휴가는 15일입니다."))
    assert not is_fragment(a("USB 사용은 금지됩니다."))


def test_missing_entities(a):
    evidence = a("이순신은 한산도 대첩에서 승리했다.")
    assert missing_entities(a("이순신은 한산도에서 승리했다."), evidence) == []
    assert missing_entities(a("강감찬은 한산도에서 승리했다."), evidence) == ["강감찬"]


@pytest.mark.parametrize(
    "text, count",
    [
        ("입사 후 3개월이 지나지 않은 수습 직원은 재택근무를 할 수 없다.", 1),
        ("승인되지 않은 USB는 사용할 수 있다.", 0),
        ("재택근무가 불가한 업무는 고객 정보 업무다.", 0),
        ("이 규정은 적용되지 않는 것이다.", 1),
    ],
)
def test_negation_inside_a_noun_modifier_is_not_the_assertion(a, text, count):
    assert negation_count(a(text)) == count


def test_negation_of_an_unrelated_clause_is_ignored(a):
    evidence = a("그러나 대통령의 반응이 없고, 사태 해결이 의도대로 진행되지 않자 마산으로 낙향했다.")
    assert negation_consistent(a("사태 해결이 의도대로 진행되지 않자 마산으로 낙향했습니다."), evidence)
    assert not negation_consistent(a("사태 해결이 의도대로 진행되자 마산으로 낙향했습니다."), evidence)


def test_added_noun_modifying_negation_is_caught_but_omission_is_not(a):
    evidence = a("당시 국가대표 감독이었던 김인식 위원장은 발언을 했다.")
    assert not negation_consistent(a("당시 국가대표 감독이 아니었던 김인식 위원장은 발언을 했습니다."), evidence)
    rule = a("입사 후 3개월이 지나지 않은 수습 직원은 재택근무를 할 수 없다.")
    assert negation_consistent(a("수습 직원은 재택근무를 할 수 없습니다."), rule)
    assert not negation_consistent(a("수습 직원은 재택근무를 할 수 있습니다."), rule)


def test_negation_split_from_its_verb_stays_with_it(a):
    evidence = a("부상으로 인해 스프링 캠프에 참여하지 못했고 뒤늦게 일본 캠프에 참여했다.")
    assert negation_consistent(a("부상으로 스프링 캠프에 참여하지 못 했습니다."), evidence)
    assert not negation_consistent(a("부상에도 스프링 캠프에 참여했습니다."), evidence)
