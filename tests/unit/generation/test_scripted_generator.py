"""ScriptedGenerator: the fake backend other packages' unit tests use, held to the Generator contract."""

from __future__ import annotations

import pytest

from generation.errors import GenerationError
from generation.scripted import ScriptedGenerator
from generation.types import GenerationParams, Message
from tests.contracts.test_generator_contract import GeneratorContract

ASK = [Message("system", "출처만 사용하세요."), Message("user", "연차휴가는 며칠인가요?")]


def _echo(messages: list[Message]) -> str:
    """Repeats what follows the colon of the last message, like a model asked to copy."""
    last = messages[-1].content
    return last.split(":", 1)[-1].strip() if ":" in last else "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 " + last


class TestScriptedGeneratorContract(GeneratorContract):
    @pytest.fixture
    def generator(self):
        return ScriptedGenerator(_echo)


def test_list_replies_come_in_order_and_calls_are_recorded():
    g = ScriptedGenerator(["연차휴가는 15일입니다 [1].", "모릅니다."])
    assert g.generate(ASK).text == "연차휴가는 15일입니다 [1]."
    assert "".join(g.stream(ASK)) == "모릅니다."
    assert g.calls == [ASK, ASK]


def test_running_out_of_replies_is_an_error():
    g = ScriptedGenerator(["하나"])
    g.generate(ASK)
    with pytest.raises(GenerationError, match="1 replies"):
        g.generate(ASK)


def test_stream_yields_small_pieces():
    pieces = list(ScriptedGenerator(["가나다라마바사"], piece_chars=3).stream(ASK))
    assert pieces == ["가나다", "라마바", "사"]


def test_count_tokens_is_half_the_length_plus_one():
    g = ScriptedGenerator([])
    assert [g.count_tokens(t) for t in ["", "안", "안녕", "안녕하세요"]] == [1, 1, 2, 3]


def test_max_tokens_cuts_with_length_reason():
    g = ScriptedGenerator(["가" * 100])
    completion = g.generate(ASK, GenerationParams(max_tokens=4))
    assert completion.finish_reason == "length"
    assert completion.completion_tokens == 4
    assert completion.text == "가" * 7


def test_stop_string_is_cut_and_excluded():
    g = ScriptedGenerator(["15일입니다.\n출처: [1]"] * 2)
    params = GenerationParams(stop=("\n",))
    assert g.generate(ASK, params).text == "15일입니다."
    assert "".join(g.stream(ASK, params)) == "15일입니다."


def test_prompt_larger_than_context_is_an_error():
    g = ScriptedGenerator(["네"], context_size=10)
    with pytest.raises(GenerationError, match="context_size 10"):
        g.generate([Message("user", "억원" * 20)])
    assert g.calls == []
