"""Korean numbers and units normalize so one fact written two ways compares equal."""

from __future__ import annotations

import pytest

from grounding.numbers import Quantity, extract_quantities, missing_quantities


def values(text: str) -> list[tuple[float, str]]:
    return [(q.value, q.unit) for q in extract_quantities(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("연차휴가는 15일이다", [(15, "일")]),
        ("예산 1,000억원", [(1e11, "원")]),
        ("예산 1천억 원", [(1e11, "원")]),
        ("총 1조 2,000억 원", [(1.2e12, "원")]),
        ("3만 5천 원", [(35000, "원")]),
        ("3년마다 갱신", [(3, "년")]),
        ("증가율 4%", [(4, "%")]),
        ("증가율 4 퍼센트", [(4, "%")]),
        ("0.5%p 상승", [(0.5, "%p")]),
        ("2024년 1월 1일", [(2024, "년"), (1, "월"), (1, "일")]),
        ("2024. 1. 1. 시행", [(2024, "년"), (1, "월"), (1, "일")]),
        ("2024-01-01", [(2024, "년"), (1, "월"), (1, "일")]),
        ("두 달 동안", [(2, "개월")]),
        ("세 차례 회의", [(3, "번")]),
        ("세 차례에 걸쳐", [(3, "번")]),  # a particle may follow the counter
        ("천사의 아홉 등급이다", [(9, "등급")]),
        ("9등급", [(9, "등급")]),
        ("두 달러", []),  # not "두 달" + "러"
        ("직원 250명", [(250, "명")]),
        ("6개월 이내", [(6, "개월")]),
        ("안녕하세요", []),
    ],
)
def test_extract_normalizes_korean_forms(text, expected):
    assert values(text) == [(float(v), u) for v, u in expected]


def test_same_amount_spelled_differently_matches():
    assert missing_quantities("예산은 1천억 원이다", "예산은 1,000억원으로 확정") == []
    assert missing_quantities("시행일은 2024년 1월 1일", "2024. 1. 1.부터 시행한다") == []


@pytest.mark.parametrize(
    "claim, evidence",
    [
        ("연차는 16일이다", "연차는 15일을 준다"),  # number changed
        ("연차는 15주이다", "연차는 15일을 준다"),  # unit changed
        ("예산 1조 원", "예산 1,000억 원"),  # magnitude changed
        ("증가율 4%", "증가율 4%p"),  # percent vs percentage points
    ],
)
def test_changed_number_or_unit_is_missing(claim, evidence):
    assert missing_quantities(claim, evidence)


def test_bare_number_matches_any_unit_of_same_value():
    assert Quantity(15, "").matches(Quantity(15, "일"))
    assert not Quantity(15, "주").matches(Quantity(15, "일"))


def test_each_claimed_number_needs_its_own_occurrence():
    # "2010년" changed to "2012년", which the source also has once, elsewhere
    assert missing_quantities("2012년 특허법원, 2012년 헌법재판소", "2010년 특허법원, 2012년 헌법재판소") == [
        Quantity(2012, "년", "2012년")
    ]
    assert missing_quantities("3, 5, 5위", "3, 4, 5위")


def test_numbers_glued_to_latin_letters_are_identifiers():
    assert values("해마의 CA3 부분") == [(3.0, "@ca")]
    assert missing_quantities("CA1 부분", "CA3 부분")
    assert not missing_quantities("AD 226년", "AD226년")


def test_unlisted_counters_are_units_but_particles_are_not():
    assert values("6량 편성") == [(6.0, "량")]
    assert missing_quantities("9월 6일", "9월 4일, 6량 편성")
    assert values("3이 된다") == [(3.0, "")]
