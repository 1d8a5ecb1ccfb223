"""Long-form answer metrics (key recall, fragments, non-answers) on Korean sentences."""

from __future__ import annotations

import pytest

from evaluation.longform import content_morphemes, fragment, key_recall, non_answer, rate


def test_content_morphemes_keep_nouns_numbers_units_and_stems_not_particles(shared_kiwi):
    got = content_morphemes(shared_kiwi, "연차휴가는 15일이며 최대 25일까지 늘어난다 [1].")
    assert {"연차", "휴가", "15", "25", "일", "최대", "늘어나다"} <= got
    assert not {"는", "까지", "이며", "1"} & got  # particles, endings and our [n] marker are not content


def test_key_recall_is_the_share_of_gold_content_the_answer_holds(shared_kiwi):
    gold = "연차휴가는 15일이다. 3년 이상 근무하면 1일을 가산한다."
    assert key_recall(shared_kiwi, gold, gold) == 1.0
    half = key_recall(shared_kiwi, "연차휴가는 15일입니다.", gold)
    assert 0.2 < half < 0.8
    assert key_recall(shared_kiwi, "주차장은 지하 2층입니다.", gold) < 0.2
    assert key_recall(shared_kiwi, "무엇이든", "") == 1.0


@pytest.mark.parametrize("text, cut", [
    ("다) 이와 같이 구 관세법 시행령 제19조 제2항은 수입물품의", True),   # a particle
    ("출장비는 실비로 정산하고,", True),                                   # a comma
    ("숙박비는 1박 10만 원이며", True),                                    # a connective ending
    ("연차휴가는 15일이다.", False),
    ("신청 기간: 3월 2일부터 3월 13일까지 온라인 접수 완료", False),        # a 개조식 line ends in a noun
])
def test_fragments_are_sentences_that_stop_midway(shared_kiwi, text, cut):
    assert fragment(text, shared_kiwi) is cut


def test_a_quote_whose_source_goes_on_inside_the_word_is_a_fragment(shared_kiwi):
    source = "수입물품의 실제지급가격에 가산하여야 한다."
    assert fragment("수입물품의 실제지급가격에 가", shared_kiwi, source)
    assert not fragment("수입물품의 실제지급가격에 가산하여야 한다.", shared_kiwi, source)


def test_non_answers_repeat_the_question(shared_kiwi):
    q = "연차휴가는 며칠인가요?"
    assert non_answer(shared_kiwi, "연차휴가에 대해 다음과 같이 설명합니다.", q)
    assert not non_answer(shared_kiwi, "연차휴가는 15일입니다.", q)
    assert rate([True, False, False, False]) == 0.25 and rate([]) is None
