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


def test_a_figure_read_from_another_column_of_its_row_is_caught():
    from grounding.numbers import wrong_column

    row = "구분: 재무팀 | 2024년 예산(억원): 3.1 | 2025년 예산(억원): 3.5 | 비고: 증액"

    def wrong(claim: str, rows=(row,)) -> bool:
        return wrong_column(claim, extract_quantities(claim), list(rows))

    assert wrong("2025년 예산은 3.1억원입니다.")  # 3.1 is the 2024 column
    assert not wrong("재무팀의 2024년 예산은 3.1억원입니다.")
    assert not wrong("2025년 예산은 3.5억원입니다.")
    assert not wrong("재무팀 예산은 3.1억원입니다.")  # names no year column: not judged here
    assert not wrong("2024년과 2025년 예산은 각각 3.1억원, 3.5억원입니다.")
    # another row of the window holds the figure under the named column: fine
    other = "구분: 인사팀 | 2024년 예산(억원): 2.0 | 2025년 예산(억원): 3.1"
    assert not wrong("2025년 예산은 3.1억원입니다.", (row, other))
    # not a table row: nothing to judge
    assert not wrong("2025년 예산은 3.1억원입니다.", ("2024년 예산은 3.1억원, 2025년 예산은 3.5억원이다.",))


def test_a_column_headers_unit_applies_to_its_cells():
    from grounding.numbers import header_unit_figures

    got = header_unit_figures("구분: 재무팀 | 2025년 예산(억원): 3.5 | 인원(단위: 명): 12 | 비율(%): 7.5 | 비고: 1건")
    assert got == [Quantity(350_000_000.0, "원", "3.5"), Quantity(12.0, "명", "12"), Quantity(7.5, "%", "7.5")]
    assert header_unit_figures("연차휴가는 15일(근로기준법)이다.") == []
