"""Running headers, footers and page numbers: found per document, taken off chunk text, kept in metadata."""

from fpdf import FPDF

from ingest.chunk import Chunker, SentenceSplitter
from ingest.furniture import strip_furniture
from ingest.load import load_file
from ingest.types import Block, SourceDoc

HEADER = "대외비 · 인사팀 · 취업규칙"
BODIES = [
    "제1조(목적) 이 규칙은 직원의 근로조건을 정한다.\n제2조(적용) 이 규칙은 모든 직원에게 적용한다.",
    "제4조(연차휴가) 직원에게는 15일의 유급휴가를 준다.\n제5조(병가) 병가는 연 60일까지 쓸 수 있다.",
    "제8조(출장) 출장비는 지침에 따라 지급한다.\n제9조(교육) 직원은 연 20시간 교육을 받는다.",
]
FOURTH = "제12조(포상) 공로가 있는 직원은 포상한다.\n제13조(징계) 징계는 위원회가 정한다."


def pages(header=HEADER, footer="- {n} -"):
    return [
        Block(f"{header}\n{body}\n{footer.format(n=n)}", page=n, layout=True)
        for n, body in enumerate(BODIES, start=1)
    ]


def test_a_header_and_footer_on_every_page_are_taken_off_and_reported():
    blocks, removed = strip_furniture(pages())
    assert [b.text for b in blocks] == BODIES
    assert removed == {n: [HEADER, f"- {n} -"] for n in (1, 2, 3)}


def test_a_line_at_the_edge_of_one_page_only_stays():
    blocks = pages()
    blocks[0] = Block(f"{HEADER}\n주식회사 한빛데이터 취업규칙\n{BODIES[0]}\n- 1 -", page=1, layout=True)
    out, removed = strip_furniture(blocks)
    assert out[0].text == f"주식회사 한빛데이터 취업규칙\n{BODIES[0]}"  # the title is not furniture
    assert "주식회사 한빛데이터 취업규칙" not in removed[1]


def test_a_line_repeated_inside_pages_is_not_furniture():
    note = "※ 세부 사항은 인사팀에 문의한다."
    blocks = [
        Block(f"{BODIES[n]}\n{note}\n{BODIES[(n + 1) % 3]}", page=n + 1, layout=True) for n in range(3)
    ]
    out, removed = strip_furniture(blocks)
    assert out == blocks and removed == {}


def test_one_page_loses_only_its_own_page_number():
    out, removed = strip_furniture([Block(f"{HEADER}\n{BODIES[0]}\n- 1 -", page=1, layout=True)])
    assert out[0].text == f"{HEADER}\n{BODIES[0]}"  # one page: nothing repeats, the header may be content
    assert removed == {1: ["- 1 -"]}
    # a figure at the end of a page that is not its number stays
    out, removed = strip_furniture([Block(f"{BODIES[0]}\n2024", page=1, layout=True)])
    assert out[0].text.endswith("2024") and removed == {}


def test_blocks_without_pages_or_layout_are_left_alone():
    blocks = [Block(f"{HEADER}\n{body}\n- 1 -", page=None, layout=True) for body in BODIES]
    blocks += [Block(f"{HEADER}\n{body}\n- 1 -", page=n, layout=False) for n, body in enumerate(BODIES, 4)]
    assert strip_furniture(blocks) == (blocks, {})


def test_half_the_pages_suffice_for_alternating_headers():
    blocks = [
        Block(f"{'취업규칙' if n % 2 else '주식회사 한빛데이터'}\n{body}", page=n, layout=True)
        for n, body in enumerate(BODIES + [FOURTH], start=1)
    ]
    out, _ = strip_furniture(blocks)
    assert [b.text for b in out] == BODIES + [FOURTH]


def char_count(texts):
    return [len(t) for t in texts]


def test_chunks_carry_no_header_and_keep_it_in_metadata():
    doc = SourceDoc(doc_id="/d/규칙.pdf", source="/d/규칙.pdf", title="규칙", blocks=pages(), sha256="0")
    chunks = Chunker(char_count, max_tokens=200, overlap_tokens=0, splitter=SentenceSplitter()).chunk(doc)
    assert chunks and not any("대외비" in c.text or "- 2 -" in c.text for c in chunks)
    assert chunks[0].text.startswith("제1조(목적)")
    assert {c.page: c.metadata["furniture"] for c in chunks} == {n: [HEADER, f"- {n} -"] for n in (1, 2, 3)}
    plain = Chunker(char_count, max_tokens=200, overlap_tokens=0, reflow=False).chunk(doc)
    assert plain[0].text.startswith(HEADER)  # with reflow off the text stays as extracted


def test_a_real_pdf_with_running_header_and_footer(tmp_path, korean_ttf):
    class Pdf(FPDF):
        def header(self):
            self.set_font("korean", size=8)
            self.cell(0, 5, HEADER, align="R")
            self.ln(12)

        def footer(self):
            self.set_y(-14)
            self.set_font("korean", size=8)
            self.cell(0, 5, f"- {self.page_no()} -", align="C")

    pdf = Pdf()
    pdf.add_font("korean", fname=str(korean_ttf))
    for body in BODIES:
        pdf.add_page()
        pdf.set_font("korean", size=11)
        for line in body.split("\n"):
            pdf.multi_cell(0, 7, line, new_x="LMARGIN", new_y="NEXT")
    path = tmp_path / "규칙.pdf"
    path.write_bytes(bytes(pdf.output()))
    [doc] = load_file(path)
    assert HEADER in doc.blocks[0].text  # the loader keeps the page as extracted
    chunks = Chunker(char_count, max_tokens=200, overlap_tokens=0, splitter=SentenceSplitter()).chunk(doc)
    text = "\n".join(c.text for c in chunks)
    assert "대외비" not in text and "- 3 -" not in text
    assert "15일의 유급휴가" in text and "연 20시간 교육" in text
    assert chunks[0].metadata["furniture"] == [HEADER, "- 1 -"]


def test_the_running_header_still_says_what_the_page_is_about_to_search():
    from ingest.chunk import index_text

    doc = SourceDoc(doc_id="/d/규칙.pdf", source="/d/규칙.pdf", title="규칙", blocks=pages(), sha256="0")
    [first, *_] = Chunker(char_count, max_tokens=200, overlap_tokens=0, splitter=SentenceSplitter()).chunk(doc)
    # off the quoted text, but indexed as context after the title; the page number is not
    assert index_text(first, True) == f"규칙 · {HEADER}\n{first.text}"
    assert index_text(first, False) == first.text


def test_the_running_header_is_context_for_the_answer_check_too():
    from grounding import Passage
    from retrieval.types import Hit

    doc = SourceDoc(doc_id="/d/규칙.pdf", source="/d/규칙.pdf", title="규칙", blocks=pages(), sha256="0")
    [first, *_] = Chunker(char_count, max_tokens=200, overlap_tokens=0, splitter=SentenceSplitter()).chunk(doc)
    passage = Passage.from_hit(Hit(chunk=first, score=1.0, rank=1))
    assert passage.context == f"규칙 {HEADER}" and passage.text == first.text  # never quoted, still evidence
