"""The behaviour every Generator backend promises; each backend's tests subclass GeneratorContract.

    class TestLlamaCppContract(GeneratorContract):
        @pytest.fixture(scope="class")
        @classmethod
        def generator(cls): return LlamaCppGenerator(path, context_size=2048, threads=2)

Prompts are Korean and answers short (max_tokens ≤ 32) so a real 0.5B model passes in seconds.
"""

from __future__ import annotations

import pytest

from generation.types import Completion, GenerationParams, Generator, Message

ECHO = [Message("user", "다음 문장을 그대로 따라 쓰세요: 안녕하세요")]
# Greedy, so generate and stream must agree token for token.
GREEDY = GenerationParams(max_tokens=32, temperature=0.0, seed=0)


class GeneratorContract:
    """Override the `generator` fixture with a ready backend (class scope keeps a model loaded once)."""

    @pytest.fixture
    def generator(self) -> Generator:
        raise NotImplementedError("a GeneratorContract subclass must provide the generator fixture")

    def test_is_a_generator(self, generator):
        assert isinstance(generator, Generator)
        assert isinstance(generator.model_id, str) and generator.model_id
        assert generator.context_size > 0

    def test_generate_answers_korean_prompt(self, generator):
        completion = generator.generate(ECHO, GREEDY)
        assert isinstance(completion, Completion)
        assert completion.text.strip()
        assert completion.finish_reason in {"stop", "length"}

    def test_stream_pieces_join_to_generate_text(self, generator):
        pieces = list(generator.stream(ECHO, GREEDY))
        assert all(isinstance(p, str) for p in pieces)
        text = "".join(pieces)
        assert text.strip()
        assert text == generator.generate(ECHO, GREEDY).text

    def test_count_tokens_positive_and_monotone(self, generator):
        short, longer = "안녕하세요", "안녕하세요. 연차휴가는 입사 1년 후 15일이 부여됩니다."
        assert generator.count_tokens(short) > 0
        assert generator.count_tokens(longer) >= generator.count_tokens(short)
        assert generator.count_tokens(longer * 4) > generator.count_tokens(longer)

    def test_max_tokens_is_honoured(self, generator):
        ask = [Message("user", "대한민국의 역사를 아주 길고 자세하게 설명해 주세요.")]
        completion = generator.generate(ask, GenerationParams(max_tokens=5, temperature=0.0))
        # A long history cannot be told in 5 tokens, so the answer must end by length.
        assert completion.finish_reason == "length"
        if completion.completion_tokens is not None:
            assert completion.completion_tokens <= 5
        # Independent of the backend's report: even an estimating count_tokens stays small.
        assert generator.count_tokens(completion.text) <= 5 * 3

    def test_stop_string_ends_the_answer(self, generator):
        ask = [Message("user", "1부터 10까지 숫자를 쉼표로 구분해서 써 주세요.")]
        params = GenerationParams(max_tokens=32, temperature=0.0, stop=("5",))
        completion = generator.generate(ask, params)
        assert "5" not in completion.text
        assert "5" not in "".join(generator.stream(ask, params))
