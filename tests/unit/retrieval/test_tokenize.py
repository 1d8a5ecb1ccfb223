"""Korean tokenization for BM25: content morphemes in, particles and endings out."""

from __future__ import annotations

import threading

import pytest

from retrieval.tokenize import (
    DEFAULT_POS,
    KiwiTokenizer,
    Tokenizer,
    WhitespaceTokenizer,
    tokenizer_from_config,
)


@pytest.fixture(scope="module")
def kiwi() -> KiwiTokenizer:
    return KiwiTokenizer()


def test_particles_and_endings_are_dropped(kiwi: KiwiTokenizer) -> None:
    terms = kiwi.tokenize("연차휴가는 15일이다.")
    assert ("연차" in terms and "휴가" in terms) or "연차휴가" in terms
    for dropped in ("는", "이", "다", ".", "이다"):
        assert dropped not in terms


def test_same_noun_with_different_particles_gives_same_terms(kiwi: KiwiTokenizer) -> None:
    assert kiwi.tokenize("연차휴가는") == kiwi.tokenize("연차휴가를") == kiwi.tokenize("연차휴가의")


def test_numbers_units_and_numerals_are_kept(kiwi: KiwiTokenizer) -> None:
    terms = kiwi.tokenize("2024년 예산은 3억원이고 지원금은 1,000만원입니다.")
    assert {"2024", "년", "예산", "3", "억", "원", "지원금", "1000", "만"} <= set(terms)
    assert "1,000" not in terms


def test_verb_and_adjective_stems_come_out_as_stems(kiwi: KiwiTokenizer) -> None:
    terms = kiwi.tokenize("점심을 먹었다. 꽃이 예쁘다. 공원을 걸었다.")
    assert {"먹", "예쁘", "걷", "점심", "꽃", "공원"} <= set(terms)


def test_latin_is_lowercased_and_hanja_kept(kiwi: KiwiTokenizer) -> None:
    terms = kiwi.tokenize("AI 모델과 API를 漢字로 설명")
    assert {"ai", "api", "漢字", "모델"} <= set(terms)
    assert "AI" not in terms


def test_blank_text_gives_no_terms(kiwi: KiwiTokenizer) -> None:
    assert kiwi.tokenize("") == []
    assert kiwi.tokenize("   \n") == []
    assert kiwi.tokenize("...!?") == []


def test_tokenize_many_matches_tokenize(kiwi: KiwiTokenizer) -> None:
    texts = ["안녕하세요, 반갑습니다.", "", "출장비는 실비로 정산한다.", "연차휴가는 15일이다."]
    assert kiwi.tokenize_many(texts) == [kiwi.tokenize(t) for t in texts]
    assert kiwi.tokenize_many(iter(texts)) == [kiwi.tokenize(t) for t in texts]
    assert kiwi.tokenize_many([]) == []


def test_pos_set_is_a_parameter(kiwi: KiwiTokenizer) -> None:
    nouns_only = KiwiTokenizer(("NNG",), kiwi=kiwi.kiwi)
    text = "직원은 15일의 연차휴가를 사용한다."
    assert set(nouns_only.tokenize(text)) <= set(kiwi.tokenize(text))
    assert "15" not in nouns_only.tokenize(text)
    assert "연차" in nouns_only.tokenize(text)
    with pytest.raises(ValueError):
        KiwiTokenizer(())


def test_kiwi_loads_lazily_once_across_threads() -> None:
    tokenizer = KiwiTokenizer()
    assert tokenizer._kiwi is None
    results: list[list[str]] = []
    threads = [threading.Thread(target=lambda: results.append(tokenizer.tokenize("휴가 신청"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert tokenizer._kiwi is not None
    assert results == [["휴가", "신청"]] * 4


def test_whitespace_tokenizer_strips_edge_punctuation() -> None:
    ws = WhitespaceTokenizer()
    assert ws.tokenize("연차휴가는 15일이다.") == ["연차휴가는", "15일이다"]
    assert ws.tokenize("(AI), 3.5% e-mail!") == ["ai", "3.5", "e-mail"]
    assert ws.tokenize("  ... ") == []
    assert ws.tokenize_many(["가 나", ""]) == [["가", "나"], []]


@pytest.mark.parametrize("tokenizer", [KiwiTokenizer(("NNG", "SN")), WhitespaceTokenizer()], ids=repr)
def test_config_round_trips(tokenizer: Tokenizer) -> None:
    rebuilt = tokenizer_from_config(tokenizer.config())
    assert type(rebuilt) is type(tokenizer)
    assert repr(rebuilt) == repr(tokenizer)
    assert rebuilt.config() == tokenizer.config()
    assert isinstance(rebuilt, Tokenizer)


def test_rebuilt_tokenizer_can_share_a_loaded_kiwi(kiwi: KiwiTokenizer) -> None:
    rebuilt = tokenizer_from_config(kiwi.config(), kiwi=kiwi.kiwi)
    assert rebuilt.kiwi is kiwi.kiwi
    assert rebuilt.tokenize("연차휴가는 15일이다.") == kiwi.tokenize("연차휴가는 15일이다.")


def test_default_config_records_the_pos_set() -> None:
    cfg = KiwiTokenizer().config()
    assert cfg["name"] == "kiwi"
    assert tuple(cfg["pos"]) == DEFAULT_POS


@pytest.mark.parametrize("cfg", [{"name": "mecab"}, {}, {"name": "kiwi"}, {"name": "kiwi", "pos": []}])
def test_bad_config_is_rejected(cfg: dict) -> None:
    with pytest.raises(ValueError):
        tokenizer_from_config(cfg)


@pytest.fixture(scope="module")
def splitting(kiwi: KiwiTokenizer) -> KiwiTokenizer:
    return KiwiTokenizer(kiwi=kiwi.kiwi, split_compounds=True)


def test_split_compounds_adds_the_parts_of_a_whole_compound(kiwi: KiwiTokenizer, splitting: KiwiTokenizer) -> None:
    text = "재택근무는 주 2회까지 허용된다."
    assert "재택근무" in kiwi.tokenize(text) and "재택" not in kiwi.tokenize(text)
    terms = splitting.tokenize(text)
    assert terms[terms.index("재택근무") + 1 : terms.index("재택근무") + 3] == ["재택", "근무"]
    assert splitting.tokenize_many([text, "국민건강보험공단"]) == [terms, splitting.tokenize("국민건강보험공단")]
    assert {"국민", "건강", "보험", "공단"} <= set(splitting.tokenize("국민건강보험공단"))


def test_split_compounds_skips_one_syllable_parts(splitting: KiwiTokenizer) -> None:
    # Kiwi's forced splits "대통"+"령" and "반도"+"체" are wrong; one syllable matches anything.
    assert splitting.tokenize("대통령과 반도체") == ["대통령", "반도체"]


def test_split_compounds_is_recorded_only_when_on(kiwi: KiwiTokenizer, splitting: KiwiTokenizer) -> None:
    assert "split_compounds" not in kiwi.config()  # indexes built before the option keep their config
    cfg = splitting.config()
    assert cfg["split_compounds"] is True
    rebuilt = tokenizer_from_config(cfg, kiwi=kiwi.kiwi)
    assert rebuilt.split_compounds and rebuilt.config() == cfg
    assert not tokenizer_from_config(kiwi.config(), kiwi=kiwi.kiwi).split_compounds
    with pytest.raises(ValueError):
        tokenizer_from_config({**cfg, "split_compounds": "yes"})
