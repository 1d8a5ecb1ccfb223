"""Chunker: sentence boundaries, token budget, overlap, pages, headings, stable ids."""

from itertools import pairwise

import pytest

from ingest.chunk import MAX_KIWI_CHARS, Chunker, SentenceSplitter, _cut_line, chunk_id
from ingest.types import Block, SourceDoc


def char_count(texts):
    """A stand-in token counter: one token per non-space character."""
    return [len(t.replace(" ", "")) for t in texts]


@pytest.fixture(scope="module")
def splitter():
    return SentenceSplitter()


def doc(blocks, doc_id="/docs/규정.txt"):
    return SourceDoc(doc_id=doc_id, source=doc_id, title="규정", blocks=blocks, sha256="0" * 64)


def test_splitter_ends_sentences_at_korean_endings_and_newlines(splitter):
    text = "연차휴가는 15일이다. 병가는 60일 이내이다.\n별표 1"
    spans = [text[s.start : s.end] for s in splitter.split(text)]
    assert spans == ["연차휴가는 15일이다.", "병가는 60일 이내이다.", "별표 1"]


def test_chunks_respect_budget_and_are_exact_substrings(splitter):
    sentences = [f"제{i}조 직원은 회사의 규정을 {i}번 지켜야 한다." for i in range(1, 30)]
    text = " ".join(sentences)
    chunker = Chunker(char_count, max_tokens=60, overlap_tokens=20, splitter=splitter)
    chunks = chunker.chunk(doc([Block(text, page=1)]))
    assert len(chunks) > 3
    for c in chunks:
        assert char_count([c.text])[0] <= 60
        assert c.text in text
        assert c.text.endswith("한다.")  # cut at sentence ends only
    # Every sentence is in some chunk.
    assert all(any(s in c.text for c in chunks) for s in sentences)


def test_overlap_repeats_trailing_sentence(splitter):
    text = " ".join(f"문장 번호 {i}번입니다." for i in range(10))
    chunker = Chunker(char_count, max_tokens=30, overlap_tokens=10, splitter=splitter)
    chunks = chunker.chunk(doc([Block(text)]))
    for prev, nxt in zip(chunks, chunks[1:]):
        last_sentence = prev.text.split(" 문장")[-1]
        assert last_sentence.split("번호")[-1] in nxt.text


def test_no_overlap_when_zero(splitter):
    text = " ".join(f"문장 번호 {i}번입니다." for i in range(10))
    chunks = Chunker(char_count, max_tokens=30, overlap_tokens=0, splitter=splitter).chunk(
        doc([Block(text)])
    )
    assert "".join(c.text.replace(" ", "") for c in chunks) == text.replace(" ", "")


def test_chunks_never_cross_pages_and_keep_headings(splitter):
    blocks = [
        Block("1쪽의 첫 문장이다. 1쪽의 둘째 문장이다.", page=1, heading="제1장 총칙"),
        Block("2쪽의 문장이다.", page=2, heading="제1장 총칙"),
        Block("2쪽 휴가 규정이다.", page=2, heading="제2장 휴가"),
    ]
    chunks = Chunker(char_count, max_tokens=500, overlap_tokens=0, splitter=splitter).chunk(
        doc(blocks)
    )
    assert [(c.page, c.heading) for c in chunks] == [
        (1, "제1장 총칙"), (2, "제1장 총칙"), (2, "제2장 휴가"),
    ]
    assert [c.position for c in chunks] == [0, 1, 2]


def test_overlong_sentence_is_cut_at_words(splitter):
    text = " ".join(["가나다라마바사"] * 40) + "."
    chunks = Chunker(char_count, max_tokens=50, overlap_tokens=0, splitter=splitter).chunk(
        doc([Block(text)])
    )
    assert len(chunks) >= 6
    assert all(char_count([c.text])[0] <= 50 for c in chunks)


def test_single_overlong_word_is_cut(splitter):
    text = "https://example.com/" + "a" * 300
    chunks = Chunker(char_count, max_tokens=50, overlap_tokens=0, splitter=splitter).chunk(
        doc([Block(text)])
    )
    assert "".join(c.text for c in chunks) == text


def assert_spans_cover(text, spans):
    """Spans are exact, ordered, non-overlapping substrings holding every non-space character."""
    assert all(a.end <= b.start for a, b in pairwise(spans))
    pieces = [text[s.start : s.end] for s in spans]
    assert all(p and p == p.strip() for p in pieces)
    assert "".join("".join(p.split()) for p in pieces) == "".join(text.split())


def test_a_one_megabyte_line_is_split_in_pieces_with_exact_spans(splitter):
    # Kiwi is superlinear on one long text (1 MB in one line: ~60 s); pieces keep it linear.
    filler = ("본 규정은 회사의 모든 임직원에게 적용된다. 출장비는 실비로 정산하며 영수증을 첨부한다. "
              "근무 시간은 오전 9시부터 오후 6시까지이다. ")
    phrase = "김해 공항 화물터미널의 보세구역 반입 절차는 세관 신고 후 진행한다."
    half = filler * (512 * 1024 // len(filler.encode()))
    text = "머리말\n" + half + phrase + " " + half
    assert len(text) > 3 * MAX_KIWI_CHARS and len(text.encode()) > 1_000_000
    spans = splitter.split(text)
    assert_spans_cover(text, spans)
    assert text[spans[0].start : spans[0].end] == "머리말"
    assert phrase in [text[s.start : s.end] for s in spans]  # cuts fall between sentences


def test_a_long_line_without_spaces_is_cut_anywhere(splitter):
    text = "표" * (2 * MAX_KIWI_CHARS + 7)
    spans = splitter.split(text)
    assert_spans_cover(text, spans)
    assert len(spans) >= 3


def test_cut_line_pieces_join_back_and_respect_the_limit():
    line = "가나다라. 마바 사아자" * 5
    pieces = _cut_line(100, line, limit=9)
    assert "".join(p for _, p in pieces) == line
    assert all(len(p) <= 9 for _, p in pieces)
    assert all(line[o - 100 : o - 100 + len(p)] == p for o, p in pieces)
    assert _cut_line(3, "짧은 줄") == [(3, "짧은 줄")]


def test_chunk_ids_are_stable_and_content_addressed(splitter):
    chunker = Chunker(char_count, max_tokens=40, overlap_tokens=0, splitter=splitter)
    d = doc([Block("연차는 15일이다. 병가는 60일이다. 재택은 불가하다.")])
    first = [c.chunk_id for c in chunker.chunk(d)]
    assert first == [c.chunk_id for c in chunker.chunk(d)]
    assert first[0].startswith("/docs/규정.txt#0000-")
    assert chunk_id("a", 1, "가") != chunk_id("a", 1, "나")


def test_empty_blocks_give_no_chunks(splitter):
    assert Chunker(char_count, splitter=splitter).chunk(doc([Block("   \n ")])) == []


def test_overlap_must_be_smaller_than_budget():
    with pytest.raises(ValueError, match="overlap_tokens"):
        Chunker(char_count, max_tokens=10, overlap_tokens=10)


def test_index_text_puts_title_and_heading_first():
    from ingest.chunk import index_text
    from retrieval.types import Chunk

    c = Chunk(chunk_id="d#0", doc_id="/d/규정.md", text="15일을 준다.", source="/d/규정.md",
              title="취업규칙", heading="제2장 휴가")
    assert index_text(c, False) == "15일을 준다."
    assert index_text(c, True) == "취업규칙 · 제2장 휴가\n15일을 준다."
    jsonl_line = Chunk(chunk_id="q1#0", doc_id="q1", text="본문", source="/c.jsonl", title="q1")
    assert index_text(jsonl_line, True) == "본문"


def test_jsonl_line_chunks_keep_the_line_id_and_parseable_chunk_ids(splitter):
    from ingest.chunk import index_text, record_id_of

    line = SourceDoc(doc_id="/d/faq.jsonl#faq-1", source="/d/faq.jsonl", title="faq-1", sha256="0" * 64,
                     blocks=[Block("연차휴가는 15일이다. 병가는 60일 이내이다.")], record_id="faq-1")
    chunks = Chunker(char_count, max_tokens=12, overlap_tokens=0, splitter=splitter).chunk(line)
    assert len(chunks) == 2
    assert all(c.metadata == {"record_id": "faq-1"} and record_id_of(c) == "faq-1" for c in chunks)
    assert all(c.chunk_id.rsplit("#", 1)[0] == c.doc_id == "/d/faq.jsonl#faq-1" for c in chunks)
    # The title that only repeats the line id stays out of the indexed text, as with old ids.
    assert index_text(chunks[0], True) == "연차휴가는 15일이다."


def test_file_chunks_have_no_record_id(splitter):
    from ingest.chunk import record_id_of

    (chunk,) = Chunker(char_count, max_tokens=50, splitter=splitter).chunk(doc([Block("연차휴가는 15일이다.")]))
    assert chunk.metadata == {} and record_id_of(chunk) == "/docs/규정.txt"
