"""The loop guard stops a draft that repeats itself, and only such a draft."""

from __future__ import annotations

from answer import LoopGuard


def feed_all(guard, text, step=3):
    return any(guard.feed(text[i : i + step]) for i in range(0, len(text), step))


def test_a_looping_draft_is_caught_within_a_few_repeats():
    guard = LoopGuard()
    looping = "교육 과정은 초3, 중1 단계이며, " + "초3은 기초, 중1은 심화 단계이며, " * 6
    assert feed_all(guard, looping)
    assert len(guard.text) < len("교육 과정은 초3, 중1 단계이며, ") + 3 * len("초3은 기초, 중1은 심화 단계이며, ")


def test_a_normal_answer_with_repeated_markers_and_words_passes():
    guard = LoopGuard()
    answer = ("국내 출장 일비는 하루 2만 원입니다 [1]. 숙박비는 1박 10만 원을 넘을 수 없습니다 [1]. "
              "해외 출장 일비는 하루 50달러입니다 [2]. 해외 출장 숙박비는 실비로 정산합니다 [2].")
    assert not feed_all(guard, answer)


def test_span_zero_length_text_never_trips():
    guard = LoopGuard(span=24)
    assert not guard.feed("짧은 답")
