"""Reflow of layout line breaks: joined sentences, kept units, exact offsets, PDFs end to end."""

import io
import re

import docx
import pytest
from fpdf import FPDF

from ingest.chunk import Chunker, SentenceSplitter
from ingest.load import load_file
from ingest.reflow import (
    REFLOW_VERSION,
    apply_joins,
    ends_sentence,
    kiwi_joiner,
    looks_hard_wrapped,
    reflow,
    rule_joiner,
)
from ingest.types import Block, SourceDoc


@pytest.fixture(scope="module")
def kiwi():
    from kiwipiepy import Kiwi

    return Kiwi()


@pytest.fixture(scope="module")
def joiner(kiwi):
    return kiwi_joiner(kiwi)


def texts(text, joiner=None):
    return [u.text for u in reflow(text, joiner).units]


def assert_offsets_exact(text, joiner=None):
    """Every unit is its original span with only the line breaks replaced, and to_original is exact."""
    r = reflow(text, joiner)
    for unit in r.units:
        assert apply_joins(text, unit.start, unit.end, r.joins) == unit.text
        # Only line breaks (with the spaces around them) differ.
        assert re.sub(r"\s+", "", text[unit.start : unit.end]) == re.sub(r"\s+", "", unit.text)
    for i, ch in enumerate(r.text):
        j = r.to_original(i)
        assert text[j] == ch or (ch == " " and text[j] in " \t\n"), (i, ch, j)
    return r


def test_wrapped_sentences_are_joined_with_a_space(joiner):
    text = "연차휴가는 1년간 80퍼센트 이상\n출근한 근로자에게 15일을\n부여한다. 병가는 연 60일\n이내이다."
    assert texts(text, joiner) == [
        "연차휴가는 1년간 80퍼센트 이상 출근한 근로자에게 15일을 부여한다. 병가는 연 60일 이내이다."
    ]
    assert_offsets_exact(text, joiner)


def test_a_break_inside_a_word_joins_without_a_space(joiner):
    text = "수입물품의 실제지급가격에 가\n산하여야 할 권리사용료와 물품 사이의 관련\n성을 규정한다."
    assert texts(text, joiner) == ["수입물품의 실제지급가격에 가산하여야 할 권리사용료와 물품 사이의 관련성을 규정한다."]
    assert_offsets_exact(text, joiner)


def test_without_kiwi_only_particles_and_endings_join_without_a_space():
    pairs = [("가격", "에"), ("추진", "하였다."), ("지급", "가격에"), ("2024년", "하반기"), ("하여야", "할")]
    assert rule_joiner(pairs) == [True, True, False, False, False]
    assert texts("관세 과세가격\n에 가산한다.") == ["관세 과세가격에 가산한다."]


def test_breaks_at_sentence_ends_are_kept(joiner):
    text = "연차휴가는 15일이다.\n병가는 60일이다\n육아휴직은 1년 이내로 함\n신청은 인사팀에 제출할 것임.\n문의는 내선 1234로 하세요\n가능한가요?"
    assert texts(text, joiner) == text.split("\n")


def test_sentence_final_endings():
    assert ends_sentence("연차휴가는 15일이다")
    assert ends_sentence("제출 완료함")
    assert ends_sentence("“그렇다.”")
    assert not ends_sentence("작년보다")  # 보다 is a particle here
    assert not ends_sentence("수입물품의 실제지급가격에 가")
    assert not ends_sentence("다음")


@pytest.mark.parametrize(
    "marker",
    ["○", "□", "■", "◦", "●", "-", "·", "※", "▶", "➢", "가)", "나)", "1.", "2)", "(3)", "①", "②"],
)
def test_each_list_item_kind_is_its_own_unit(joiner, marker):
    text = f"다음 사항을 준수하여야\n{marker} 출장비는 사전에 신청하고\n승인을 받아야 한다\n{marker} 영수증 제출"
    assert texts(text, joiner) == [
        "다음 사항을 준수하여야",
        f"{marker} 출장비는 사전에 신청하고 승인을 받아야 한다",
        f"{marker} 영수증 제출",
    ]
    assert_offsets_exact(text, joiner)


def test_gaejosik_bullets_ending_in_a_noun_end_their_unit(joiner):
    text = "○ 공공데이터 개방 확대 추진\n 민간 활용 지원 강화\n○ 시스템 구축 완료\n○ 하반기 시범\n운영 예정\n○ 예산을 추진\n하였다"
    r = reflow(text, joiner)
    assert [u.text for u in r.units] == [
        "○ 공공데이터 개방 확대 추진",
        "민간 활용 지원 강화",
        "○ 시스템 구축 완료",
        "○ 하반기 시범 운영 예정",  # "시범" is no bullet end: the bullet wraps
        "○ 예산을 추진하였다",  # "하였다" continues the word
    ]
    assert [u.kind for u in r.units][:3] == ["item", "item", "item"]


def test_headings_are_units(joiner):
    text = "제1장 총칙\n제1조(목적) 이 규정은 직원의 휴가에\n관한 사항을 정한다.\n제2조(정의) 이 규정에서\n사용하는 용어는 다음과 같다.\n\n추진 배경\n\n최근 재택근무 수요가\n늘었다.\n주요 내용\n○ 근무제도 개선"
    r = reflow(text, joiner)
    assert [(u.kind, u.text) for u in r.units] == [
        ("heading", "제1장 총칙"),
        ("article", "제1조(목적) 이 규정은 직원의 휴가에 관한 사항을 정한다."),
        ("article", "제2조(정의) 이 규정에서 사용하는 용어는 다음과 같다."),
        ("heading", "추진 배경"),
        ("text", "최근 재택근무 수요가 늘었다."),
        ("heading", "주요 내용"),
        ("item", "○ 근무제도 개선"),
    ]
    assert_offsets_exact(text, joiner)


@pytest.mark.parametrize(
    "row",
    ["구분\t2023년\t2024년", "구분 | 2023년 | 2024년", "매출 합계   100억원   120억원", "영업 이익   10억원   12억 원"],
)
def test_table_rows_are_units(joiner, row):
    text = f"매출은 다음 표와\n{row}\n{row}\n같이 늘었다."
    r = reflow(text, joiner)
    assert [u.text for u in r.units] == ["매출은 다음 표와", row, row, "같이 늘었다."]
    assert [u.kind for u in r.units][1:3] == ["table", "table"]


def test_captioned_tables_and_rows_of_figures_keep_their_rows(joiner):
    # pypdf gives a PDF table's cells separated by single spaces: each row stays a unit (and the
    # header under the caption), so a quote is one row, not the whole table in one "sentence"
    text = ("제5조(국내 출장 여비) 여비는 다음 표의\n기준에 따라 지급한다.\n<표 1> 국내 출장 여비 (단위: 원)\n"
            "구분 일비(1일) 식비(1일) 숙박비(1박 상한)\n임원 30,000 40,000 120,000\n부장 이하 직원 25,000 30,000 100,000\n"
            "제6조(숙박비 정산) 숙박비는 상한액 범위에서\n실비로 지급한다.")
    r = reflow(text, joiner)
    assert [u.text for u in r.units] == [
        "제5조(국내 출장 여비) 여비는 다음 표의 기준에 따라 지급한다.", "<표 1> 국내 출장 여비 (단위: 원)",
        "구분 일비(1일) 식비(1일) 숙박비(1박 상한)", "임원 30,000 40,000 120,000", "부장 이하 직원 25,000 30,000 100,000",
        "제6조(숙박비 정산) 숙박비는 상한액 범위에서 실비로 지급한다.",
    ]
    assert [u.kind for u in r.units][1:5] == ["table"] * 4
    assert_offsets_exact(text, joiner)
    # a row of figures needs no caption; a wrapped sentence with a figure or two is prose
    assert texts("매출은 다음과 같다.\n매출액 1,250 1,430 14.4\n영업이익 151 182 20.5", joiner)[1:] == [
        "매출액 1,250 1,430 14.4", "영업이익 151 182 20.5"]
    assert texts("매출액은 1,430억원으로 전년보다\n14.4% 늘었고 영업이익은 182억원\n으로 집계되었다.", joiner) == [
        "매출액은 1,430억원으로 전년보다 14.4% 늘었고 영업이익은 182억원으로 집계되었다."]


def test_justified_lines_with_doubled_gaps_are_prose(joiner):
    # pypdf extracts justified lines with many gaps doubled; they are no table rows.
    text = "실제지급가격에  가산하여야  할\n권리사용료와  물품 사이의  관련성을\n규정한다. 1989년  2월  15일  여의도\n시위를 주도하였다."
    assert texts(text, joiner) == [
        "실제지급가격에  가산하여야  할 권리사용료와  물품 사이의  관련성을 규정한다. 1989년  2월  15일  여의도 시위를 주도하였다."
    ]


def test_wrapped_words_that_look_like_markers_continue(joiner):
    text = (
        "그는 국무회의 중심으로 이뤄졌어야 했다고 지적했\n다. 티베트 고원은 신생대 초기에 형성되었으며 인도\n"
        "-오스트레일리아판과 충돌하였다. 존 맥도날드(John A.\nMacdonald)의 보수당이 집권했다. 1년은 약 354.\n"
        "3671일이다. 길이는 약 45cm이며 방주는 상\n·중·하 3층으로 되어 있다"
    )
    r = assert_offsets_exact(text, joiner)
    assert r.units[0].text == text.replace("\n-", "-").replace("\n·", "·").replace(".\n3", ".3").replace(
        "했\n다", "했다").replace("A.\n", "A. ")  # fmt: skip
    assert len(r.units) == 1


def test_offsets_map_back_to_the_original_text(joiner):
    text = "  연차휴\n가는 15일을\t\n  부여한다.\n\n○ 병가 60일\n"
    r = assert_offsets_exact(text, joiner)
    assert r.text == "  연차휴가는 15일을 부여한다.\n\n○ 병가 60일\n"
    unit = r.units[0]
    assert (unit.start, unit.end) == (2, text.index("부여한다.") + len("부여한다."))
    i = r.text.index("15일")
    assert text[r.to_original(i) : r.to_original(i) + 3] == "15일"


def test_clean_korquad_like_prose_is_unchanged(joiner):
    text = (
        "1989년 2월 15일 여의도 농민 폭력 시위를 주도한 혐의로 지명수배되었다. 1989년 3월 12일 서울지방검찰청 "
        "공안부는 임종석의 사전구속영장을 발부받았다.\n같은 해 6월 30일 평양축전에 임수경을 대표로 파견하여 "
        "국가보안법위반 혐의가 추가되었다.\n경찰은 12월 18일~20일 사이 서울 경희대학교에서 임종석이 성명 발표를 "
        "추진하고 있다는 첩보를 입수했고, 12월 18일 오전 7시 40분 경 가스총과 전자봉으로 무장한 특공조 및 대공과 "
        "직원 12명 등 22명의 사복 경찰을 승용차 8대에 나누어 경희대학교에 투입했다."
    )
    r = reflow(text, joiner)
    assert r.text == text and r.joins == []
    assert texts(text, joiner) == text.split("\n")


def test_hard_wrapped_text_is_recognized():
    wrapped = "연차휴가는 1년간 80퍼센트 이상 출근한\n근로자에게 15일을 부여하며 3년 이상\n계속 근로한 근로자에게는 최초 1년을\n초과하는 계속 근로 연수 매 2년에 대하여\n1일을 가산한다."
    one_per_line = "연차휴가는 15일이다.\n병가는 60일이다.\n육아휴직은 1년이다.\n출장비는 실비로 지급한다."
    assert looks_hard_wrapped(wrapped)
    assert not looks_hard_wrapped(one_per_line)
    assert not looks_hard_wrapped("○ 출장\n○ 휴가\n○ 교육\n○ 복무")


# ---------------------------------------------------------------- through the loaders and the chunker


def char_count(texts):
    return [len(t.replace(" ", "")) for t in texts]


def narrow_pdf(paragraphs, font, width=70):
    """A PDF page whose paragraphs fpdf2 wraps at `width` mm, so sentences run over several lines."""
    pdf = FPDF()
    pdf.add_font("korean", fname=str(font))
    pdf.set_font("korean", size=11)
    pdf.add_page()
    for paragraph in paragraphs:
        pdf.multi_cell(width, 6, paragraph)
        pdf.ln(4)
    return bytes(pdf.output())


SENTENCES = [
    "구 관세법 시행령 제19조 제2항은 수입물품의 실제지급가격에 가산하여야 할 권리사용료의 요건을 정하고 있다.",
    "권리사용료와 물품 사이의 관련성과 거래조건성을 모두 갖추어야 과세가격에 포함된다.",
    "연차휴가는 1년간 80퍼센트 이상 출근한 근로자에게 15일을 부여한다.",
]


def test_a_narrow_pdf_gives_whole_sentences(tmp_path, korean_ttf, kiwi):
    path = tmp_path / "판결.pdf"
    path.write_bytes(narrow_pdf([" ".join(SENTENCES[:2]), SENTENCES[2]], korean_ttf))
    [doc] = load_file(path)
    assert doc.blocks[0].layout and doc.blocks[0].text.count("\n") > 4  # the lines as typeset
    splitter = SentenceSplitter(kiwi)
    chunks = Chunker(char_count, max_tokens=100, overlap_tokens=0, splitter=splitter).chunk(doc)
    sentences = [c.text[s.start : s.end] for c in chunks for s in splitter.split(c.text)]
    # Spacing may differ: pypdf doubles justified gaps, and Kiwi writes an auxiliary verb
    # attached where the line broke before it ("가산하여야\n할" -> "가산하여야할", an allowed spacing).
    assert [re.sub(r"\s+", "", s) for s in sentences] == [re.sub(r"\s+", "", s) for s in SENTENCES]
    assert "제2항은 수입물품의" in chunks[0].text  # a word boundary at a line break keeps its space


def test_without_reflow_the_same_pdf_gives_fragments(tmp_path, korean_ttf, kiwi):
    path = tmp_path / "판결.pdf"
    path.write_bytes(narrow_pdf([" ".join(SENTENCES[:2])], korean_ttf))
    [doc] = load_file(path)
    splitter = SentenceSplitter(kiwi)
    chunks = Chunker(char_count, max_tokens=400, overlap_tokens=0, splitter=splitter, reflow=False).chunk(doc)
    assert len(splitter.split(chunks[0].text)) > 2


def test_chunk_ids_change_only_for_reflowed_documents(kiwi):
    chunker = Chunker(char_count, max_tokens=60, overlap_tokens=0, splitter=SentenceSplitter(kiwi))
    plain = Chunker(char_count, max_tokens=60, overlap_tokens=0, splitter=SentenceSplitter(kiwi), reflow=False)
    text = "연차휴가는 15일을\n부여한다."

    def doc(block):
        return SourceDoc(doc_id="/d/규정.pdf", source="/d/규정.pdf", title="규정", blocks=[block], sha256="0" * 64)

    unmarked = doc(Block(text, page=1))
    assert [c.chunk_id for c in chunker.chunk(unmarked)] == [c.chunk_id for c in plain.chunk(unmarked)]
    marked = doc(Block(text, page=1, layout=True))
    assert [c.text for c in chunker.chunk(marked)] == ["연차휴가는 15일을 부여한다."]
    assert chunker.chunk(marked)[0].chunk_id != plain.chunk(marked)[0].chunk_id
    clean = doc(Block("연차휴가는 15일이다.\n병가는 60일이다.", page=1, layout=True))
    assert [c.chunk_id for c in chunker.chunk(clean)] == [c.chunk_id for c in plain.chunk(clean)]


def test_hard_wrapped_txt_is_marked_for_reflow_and_clean_txt_is_not(tmp_path):
    wrapped = tmp_path / "규정.txt"
    wrapped.write_bytes("연차휴가는 1년간 80퍼센트 이상 출근한\n근로자에게 15일을 부여하며 3년 이상\n계속 근로한 근로자에게는 최초 1년을\n초과하는 계속 근로 연수 매 2년에 대하여\n1일을 가산한다.".encode("cp949"))
    clean = tmp_path / "안내.txt"
    clean.write_text("연차휴가는 15일이다.\n병가는 60일이다.\n육아휴직은 1년이다.\n출장비는 실비로 지급한다.", encoding="utf-8")
    assert load_file(wrapped)[0].blocks[0].layout
    assert not load_file(clean)[0].blocks[0].layout


# ---------------------------------------------------------------- soft line breaks in paragraphs

# One sentence cut by a soft line break, a heading-like paragraph that ends no sentence, a
# paragraph whose soft breaks separate list lines, and two bullet paragraphs.
SOFT = "연차휴가는 입사 1년 후\n15일이 부여된다."
LABEL = "휴가 신청 방법"
LIST = "신청 서류는 다음과 같다.\n○ 휴가 신청서\n○ 증빙 서류"
BULLETS = ["- 병가는 60일 이내이다.", "- 경조휴가는 5일이다."]
PARAGRAPHS = [SOFT, LABEL, LIST, *BULLETS]
WHOLE = [
    "연차휴가는 입사 1년 후 15일이 부여된다.",
    LABEL,  # a paragraph break stays one, even where no sentence ended
    "신청 서류는 다음과 같다.",
    "○ 휴가 신청서",
    "○ 증빙 서류",
    *BULLETS,
]


def soft_docx(_build):
    document = docx.Document()
    document.add_heading("휴가", level=1)
    for text in PARAGRAPHS:
        paragraph = document.add_paragraph()
        for i, line in enumerate(text.split("\n")):
            run = paragraph.add_run(line)
            if i < text.count("\n"):
                run.add_break()  # <w:br/>: a soft line break
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def soft_hwpx(build):
    heading = build.hwpx_paragraph("휴가", style="2")
    paragraphs = [build.hwpx_paragraph(text.replace("\n", "<hp:lineBreak/>")) for text in PARAGRAPHS]
    return build.hwpx([build.hwpx_section(heading, *paragraphs)])


def soft_hwp(build):
    def para(text):
        parts = []
        for i, line in enumerate(text.split("\n")):
            parts += [[10], line] if i else [line]  # control 10: a line break inside the paragraph
        return build.hwp_para_text(*parts)

    return build.hwp([[para(text) for text in PARAGRAPHS]])


def soft_html(build):
    body = "".join(f"<p>{text.replace(chr(10), '<br>')}</p>" for text in PARAGRAPHS[:3])
    items = "".join(f"<li>{text}</li>" for text in BULLETS)
    return f"<html><body><h2>휴가</h2>{body}<ul>{items}</ul></body></html>".encode()


@pytest.mark.parametrize(
    ("name", "make"),
    [("규정.docx", soft_docx), ("규정.hwpx", soft_hwpx), ("규정.hwp", soft_hwp), ("규정.html", soft_html)],
    ids=["docx", "hwpx", "hwp", "html"],
)
def test_a_soft_line_break_inside_a_sentence_is_reflowed(name, make, build, tmp_path, kiwi, joiner):
    path = tmp_path / name
    path.write_bytes(make(build))
    [doc] = load_file(path)
    # Only the paragraphs holding soft breaks are marked for reflow, each as a block of its own.
    assert [b.text for b in doc.blocks if b.layout] == [SOFT, LIST]
    assert "\n".join(b.text for b in doc.blocks if not b.layout) == "\n".join([LABEL, *BULLETS])
    splitter = SentenceSplitter(kiwi)
    [chunk] = Chunker(char_count, max_tokens=200, overlap_tokens=0, splitter=splitter).chunk(doc)
    assert [chunk.text[s.start : s.end] for s in splitter.split(chunk.text)] == WHOLE
    for block in (b for b in doc.blocks if b.layout):
        r = assert_offsets_exact(block.text, joiner)
        assert r.text in chunk.text  # the chunk quotes the reflowed paragraph
        for s in splitter.split(r.text):  # and each of its sentences maps back onto the paragraph
            start, end = r.to_original(s.start), r.to_original(s.end - 1) + 1
            assert apply_joins(block.text, start, end, r.joins) == r.text[s.start : s.end]
    # Without reflow the soft break still cuts the sentence in two.
    plain = Chunker(char_count, max_tokens=200, overlap_tokens=0, splitter=splitter, reflow=False)
    [cut] = plain.chunk(doc)
    assert "연차휴가는 입사 1년 후" in [cut.text[s.start : s.end] for s in splitter.split(cut.text)]


def test_only_layout_blocks_are_reflowed_not_the_breaks_between_blocks(kiwi):
    chunker = Chunker(char_count, max_tokens=200, overlap_tokens=0, splitter=SentenceSplitter(kiwi))
    blocks = [Block(LABEL, heading="휴가"), Block(SOFT, heading="휴가", layout=True), Block("병가 안내", heading="휴가")]
    doc = SourceDoc(doc_id="/d/규정.docx", source="/d/규정.docx", title="규정", blocks=blocks, sha256="0" * 64)
    [chunk] = chunker.chunk(doc)
    assert chunk.text == f"{LABEL}\n연차휴가는 입사 1년 후 15일이 부여된다.\n병가 안내"


def test_build_config_names_the_reflow_key_for_older_indexes():
    from ingest.manifest import Manifest, config_differences

    old = Manifest(embedding={"model_id": "m", "dim": 8}, tokenizer={"name": "kiwi"},
                   bm25={"k1": 1.2, "b": 0.75}, chunking={"max_tokens": 64, "overlap_tokens": 8})
    now = {**old.build_config(), "chunking": {**old.build_config()["chunking"], "reflow": "1"}}
    assert config_differences(old.build_config(), now) == ["chunking.reflow: index None, settings '1'"]



def test_an_index_chunked_without_reflow_is_rechunked_by_the_next_ingest(tmp_path, embedder, tokenizer):
    from ingest.build import IndexBuilder
    from retrieval.store import open_index

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "규정.txt").write_text(
        "연차휴가는 1년간 80퍼센트 이상 출근한\n근로자에게 15일을 부여하며 3년 이상\n계속 근로한 근로자에게는 최초 1년을\n"
        "초과하는 계속 근로 연수 매 2년에 대하여\n1일을 가산한다.",
        encoding="utf-8",
    )

    def builder(reflow_on):
        chunker = Chunker(embedder.count_tokens_many, max_tokens=200, overlap_tokens=4,
                          splitter=SentenceSplitter(tokenizer.kiwi), reflow=reflow_on)
        return IndexBuilder(tmp_path / "index", embedder, tokenizer, chunker)

    builder(False).ingest([docs])  # what an index built before reflow holds: "reflow": None
    assert open_index(tmp_path / "index").manifest["chunking"]["reflow"] is None
    report = builder(True).ingest([docs])  # the same, unchanged file: re-chunked all the same
    assert report.rechunked == [f"chunking.reflow: index None, settings '{REFLOW_VERSION}'"]
    assert (report.updated, report.unchanged) == (1, 0)
    assert report.to_dict()["rechunked"] == report.rechunked
    index = open_index(tmp_path / "index")
    assert index.manifest["chunking"]["reflow"] == REFLOW_VERSION
    [chunk] = index.chunks
    assert "\n" not in chunk.text and "출근한 근로자에게" in chunk.text
    assert builder(True).ingest([docs]).rechunked == []  # once


def test_minutes_fields_and_the_titles_after_them_stay_units(joiner):
    # a meeting record: labelled fields, a wrapped field value, title lines, then prose
    text = ("일시: 2025. 3. 14.(금) 14:00 ~ 16:10\n장소: 본사 12층 대회의실\n"
            "참석자: 대표이사 이정민(위원장), 경영지원본부장\n최혜진, 재무팀장 오지수(간사)\n"
            "안건\n제1호 안건: 2025년 신규 채용 계획(안)\n논의 내용\n"
            "제1호 안건에 대하여 경영지원본부장은 신규 채용 인원을\n75명으로 보고하였다.\n"
            "○ 지역 청년 디지털 인재 100명 양성 및 채용 연계\n추진\n")
    assert texts(text, joiner) == [
        "일시: 2025. 3. 14.(금) 14:00 ~ 16:10",
        "장소: 본사 12층 대회의실",
        "참석자: 대표이사 이정민(위원장), 경영지원본부장 최혜진, 재무팀장 오지수(간사)",
        "안건",
        "제1호 안건: 2025년 신규 채용 계획(안)",
        "논의 내용",
        "제1호 안건에 대하여 경영지원본부장은 신규 채용 인원을 75명으로 보고하였다.",
        "○ 지역 청년 디지털 인재 100명 양성 및 채용 연계 추진",  # an action noun wraps, no title
    ]
    assert_offsets_exact(text, joiner)
    assert texts("오전 회의는\n14:00 부터 열린다.", joiner) == ["오전 회의는 14:00 부터 열린다."]  # a time is no label


def test_a_short_opening_line_over_full_lines_is_a_title(joiner):
    # an encyclopedia page or a notice: the title line with no mark, then wrapped prose
    body = ("대한민국의 축구 선수로 독일 분데스리가에서\n활약하며 아시아인으로서는 역대 최다득점이 되는 리\n"
            "그 통산 98골을 기록하였다. 독일에서 활약했을 당시\n차붐이라는 애칭으로 불렸다.")
    text = "차범근\n" + body
    r = reflow(text, joiner)
    assert [(u.kind, u.text) for u in r.units] == [
        ("heading", "차범근"),
        ("text", "대한민국의 축구 선수로 독일 분데스리가에서 활약하며 아시아인으로서는 역대 최다득점이 되는 리그 "
                 "통산 98골을 기록하였다. 독일에서 활약했을 당시 차붐이라는 애칭으로 불렸다."),
    ]
    assert_offsets_exact(text, joiner)
    # a title with a parenthesis, after a paragraph that ended on its line
    text2 = "그 뒤 독일에서 돌아왔다.\n김영하 (소설가)\n" + body
    assert texts(text2, joiner)[1] == "김영하 (소설가)"
    # a line as long as the others is the first line of a sentence, not a title
    assert texts("대한민국의 축구 선수로 독일 분데스리가에서\n" + body, joiner)[0].startswith("대한민국의 축구 선수로 독일 분데스리가에서 대한민국의")
    # a short line that ends a sentence, or one whose next line starts with a particle, is no title
    assert texts("끝났다.\n" + body, joiner)[0] == "끝났다."
    assert texts("지급 가격\n에 포함되는 권리사용료는 수입물품과 관련되고 거래조건인\n" + body, joiner)[0].startswith("지급 가격에 포함")
    # too few lines to know the width: a short first line continues as before
    assert texts("차범근\n대한민국의 축구 선수로 독일 분데스리가에서\n활약하였다.", joiner) == [
        "차범근 대한민국의 축구 선수로 독일 분데스리가에서 활약하였다."
    ]
