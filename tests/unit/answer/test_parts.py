"""Question parts: one per thing asked, with its words and the kind of answer it wants."""

from __future__ import annotations

import pytest

from answer import split_question


def texts(kiwi, question):
    return [(p.text, p.asks) for p in split_question(kiwi, question)]


def test_a_single_question_is_one_part(shared_kiwi):
    (part,) = split_question(shared_kiwi, "연차휴가는 며칠인가요?")
    assert part.asks == "count" and {"연차", "휴가"} <= part.terms and "며칠" not in part.terms


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("출장 숙박비 한도는 얼마이며, 일비는 하루 얼마인가요?",
         [("출장 숙박비 한도는 얼마이며", "amount"), ("일비는 하루 얼마인가요?", "amount")]),
        ("재택근무 신청 방법은 무엇이고 승인권자는 누구인가요?",
         [("재택근무 신청 방법은 무엇이고", None), ("승인권자는 누구인가요?", "person")]),
        ("아바톡은 어떻게 활용되는지, 그리고 어떤 방법이 적용되는지 알려주세요.",
         [("아바톡은 어떻게 활용되는지", None), ("어떤 방법이 적용되는지", None)]),
        ("건강검진 기간은 언제이고 예약은 언제까지 해야 하나요?",
         [("건강검진 기간은 언제이고", "date"), ("예약은 언제까지 해야 하나요?", "date")]),
    ],
)
def test_joined_questions_are_split_at_the_join(shared_kiwi, question, expected):
    assert texts(shared_kiwi, question) == expected


def test_coordinated_nouns_asked_about_each_become_parts(shared_kiwi):
    parts = split_question(shared_kiwi, "연차휴가와 병가는 각각 며칠인가요?")
    assert [p.text for p in parts] == ["연차휴가는 각각 며칠인가요?", "병가는 각각 며칠인가요?"]
    assert [p.asks for p in parts] == ["count", "count"]
    assert "병가" in parts[1].terms and "연차" not in parts[1].terms


def test_a_verb_chain_is_not_two_questions(shared_kiwi):
    # "신청하고" joins two verbs of one question; it asks nothing before the join
    assert len(split_question(shared_kiwi, "신청하고 승인받는 절차는 어떻게 되나요?")) == 1
    # "A와 B의 차이" without an interrogative after the nouns is one thing asked
    assert len(split_question(shared_kiwi, "연차휴가와 병가를 함께 쓸 수 있나요?")) == 1


def test_a_noun_a_determiner_points_back_with_is_optional(shared_kiwi):
    (part,) = split_question(shared_kiwi, "이 사업의 기대 효과는 무엇인가요?")
    assert part.optional == {"사업"} and {"기대", "효과", "사업"} <= part.terms
    (part,) = split_question(shared_kiwi, "이 제도는 무엇인가요?")
    assert part.optional == frozenset()  # the only word asked stays needed


def test_two_interrogatives_of_two_kinds_are_two_parts(shared_kiwi):
    when, where = split_question(shared_kiwi, "제3차 경영위원회는 언제, 어디서 열렸나요?")
    assert (when.asks, where.asks) == ("date", "place")
    assert "어디" not in when.text and "언제" not in where.text and when.text.startswith("제3차 경영위원회는")
    # a number with its counter is one term: "3차" (not any 3), and field labels ride along
    assert "3차" in when.terms and "3" not in when.terms
    assert "일시" in when.labels and "장소" in where.labels and not when.labels & when.terms
    (one,) = split_question(shared_kiwi, "연차휴가는 며칠인가요?")
    assert one.asks == "count"


def test_the_word_after_an_argument_interrogative_is_the_parts_focus(shared_kiwi):
    (part,) = split_question(shared_kiwi, "스트라토캐스터의 싱글픽업은 무엇이 떨어지는 듯한 청아한 클린톤을 내는가?")
    assert part.focus == {"떨어지"}
    (part,) = split_question(shared_kiwi, "천사는 몇 등급으로 나뉘는가?")
    assert part.focus == {"등급"}
    # an interrogative that is the predicate, or asks for a number, has no focus
    for question in ("차범근의 부인의 이름은 무엇인가?", "연차휴가는 며칠인가요?"):
        assert split_question(shared_kiwi, question)[0].focus == frozenset()
