"""Stop-string handling shared by the backends that cut text themselves."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from generation.text import cut_at_stop, stream_until_stop, to_chat_dicts
from generation.types import Message


def test_to_chat_dicts():
    assert to_chat_dicts([Message("user", "안녕하세요")]) == [{"role": "user", "content": "안녕하세요"}]


def test_cut_at_earliest_stop():
    assert cut_at_stop("15일입니다.\n출처: [1]", ["출처", "\n"]) == ("15일입니다.", True)
    assert cut_at_stop("15일입니다.", ["\n"]) == ("15일입니다.", False)
    assert cut_at_stop("15일", ["", "억원"]) == ("15일", False)


def test_stream_stops_on_a_stop_string_split_across_pieces():
    pieces = ["3억", "원입니", "다.\n", "\n출처"]
    assert "".join(stream_until_stop(pieces, ["\n\n"])) == "3억원입니다."
    assert list(stream_until_stop(["15일", "입니다.\n", "출처"], ["\n"])) == ["15일", "입니다."]


def test_a_longer_stop_starting_earlier_wins_over_a_shorter_one_found_first():
    # "\n가" holds the stop "가", but "\n가가" (also a stop) starts earlier and completes next
    assert list(stream_until_stop(["\n가", "가"], ["가", "\n가가"])) == []
    assert list(stream_until_stop(["\n가", "나"], ["가", "\n가가"])) == ["\n"]


def test_stream_holds_back_only_possible_stop_prefixes():
    # "만" may start "만원": held until the next piece shows it is "만 명".
    assert list(stream_until_stop(["직원 3", "만", " 명"], ["만원"])) == ["직원 3", "만 명"]
    assert list(stream_until_stop(["가", "나"], [])) == ["가", "나"]


@given(
    text=st.text(alphabet="가나다\n억원 ", max_size=30),
    cuts=st.lists(st.integers(min_value=0, max_value=30), max_size=6),
    stops=st.lists(st.text(alphabet="가나\n억원", min_size=1, max_size=3), max_size=3),
)
def test_streaming_equals_cutting_the_whole_text(text, cuts, stops):
    bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
    pieces = [text[a:b] for a, b in pairwise(bounds)]
    assert "".join(stream_until_stop(pieces, stops)) == cut_at_stop(text, stops)[0]
