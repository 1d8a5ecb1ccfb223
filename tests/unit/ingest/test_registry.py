"""The loader registry: a format added as one module is read by load_file, and the sniff rule
refuses a file whose content is another type than its name says (ingest/loaders/registry.py)."""

from __future__ import annotations

import io
import struct
import sys
import zipfile

import pytest
from PIL import Image

import ingest.loaders
from ingest.errors import (
    EncryptedDocumentError,
    FileTypeMismatch,
    LoadError,
    NeedsOcrError,
    UnsupportedFileType,
)
from ingest.load import SUPPORTED_EXTENSIONS, load_file
from ingest.loaders import registry
from tests.unit.ingest.test_load import load_one, raises_for

MEMO_MODULE = '''
"""A made-up format: a first line "MEMO1", then the memo's text."""
from ingest.loaders.registry import Format, Magic, register
from ingest.types import Block


def load_memo(path, data, limits):
    title, _, body = data.decode("utf-8").removeprefix("MEMO1\\n").partition("\\n")
    return title, [Block(body.strip())]


register(Format("memo", (".memo",), load=load_memo,
                magic=(Magic("memo", "a memo", lambda probe: probe.head.startswith(b"MEMO1\\n")),)))
'''


@pytest.fixture
def memo_format(tmp_path, monkeypatch):
    """ingest/loaders/ with one more module in it (in a folder of its own), discovered again."""
    folder = tmp_path / "more_loaders"
    folder.mkdir()
    (folder / "zz_memo.py").write_text(MEMO_MODULE, encoding="utf-8")
    monkeypatch.setattr(ingest.loaders, "__path__", [*ingest.loaders.__path__, str(folder)])
    monkeypatch.setattr(registry, "_formats", dict(registry._formats))
    yield registry.discover
    sys.modules.pop("ingest.loaders.zz_memo", None)


def test_a_format_added_as_one_module_is_read_by_load_file(memo_format, write_file):
    path = write_file("회의.memo", "MEMO1\n주간 회의\n다음 회의는 3월 14일 오전 10시에 연다.\n".encode())
    with pytest.raises(UnsupportedFileType):
        load_file(path)
    memo_format()
    doc = load_one(path)
    assert (doc.title, doc.text) == ("주간 회의", "다음 회의는 3월 14일 오전 10시에 연다.")
    # its magic joins the sniff rule: a memo under another name is refused, saying what to rename it to
    reason = raises_for(write_file("회의.txt", path.read_bytes()), FileTypeMismatch)
    assert reason == "binary data, not text: the name says .txt (text) but the content is a memo; rename it to .memo to read it"


def test_every_loader_module_registers_its_formats():
    assert {e for f in registry.formats() for e in f.extensions} == set(SUPPORTED_EXTENSIONS)
    assert registry.find(".PDF").name == "PDF document"
    assert registry.find(".doc") is None
    with pytest.raises(ValueError, match=r"\.pdf already read by PDF document"):
        registry.register(registry.Format("another PDF", (".pdf",), load=lambda *a: (None, [])))


# ---------------------------------------------------------------- the sniff rule


def _zip(**members: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return out.getvalue()


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("L", (8, 8), 255).save(out, format="PNG")
    return out.getvalue()


EXE = b"MZ" + bytes(58) + struct.pack("<I", 64) + b"PE\0\0" + bytes(200)
HTML = "<!DOCTYPE html><html><body><p>연차휴가는 15일이다.</p></body></html>".encode()


@pytest.mark.parametrize(
    ("name", "content", "reason", "rename_to"),
    [
        ("보고.pdf", lambda b: _zip(**{"메모.txt": "안녕하세요"}),
         "the name says .pdf (PDF document) but the content is a ZIP archive", None),
        ("공지.pdf", lambda b: HTML,
         "the name says .pdf (PDF document) but the content is an HTML page; rename it to .html to read it", ".html"),
        ("규정.txt", lambda b: b.pdf(["Page one"]),
         ("binary data, not text: the name says .txt (text) but the content is a PDF document; "
          "rename it to .pdf to read it"), ".pdf"),
        ("설치.docx", lambda b: EXE,
         "the name says .docx (Word document) but the content is a Windows program (.exe/.dll)", None),
        ("예산.xlsx", lambda b: b.docx(),
         "the name says .xlsx (Excel workbook) but the content is a Word document; rename it to .docx to read it",
         ".docx"),
        ("사진.pdf", lambda b: _png(),
         "the name says .pdf (PDF document) but the content is a PNG image; rename it to .png to read it", ".png"),
        ("문서.hwpx", lambda b: b.ole({"FileHeader": b"HWP Document File"}),
         ("the name says .hwpx (HWPX document) but the content is an OLE compound file (an HWP 5 document, "
          "or a legacy or password-protected Office file)"), None),
    ],
    ids=["zip-as-pdf", "html-as-pdf", "pdf-as-txt", "exe-as-docx", "docx-as-xlsx", "png-as-pdf", "ole-as-hwpx"],
)
def test_content_of_another_type_than_the_name_is_refused_naming_both(write_file, build, name, content, reason,
                                                                        rename_to):
    with pytest.raises(FileTypeMismatch) as info:
        load_file(write_file(name, content(build)))
    assert info.value.reason == reason
    assert info.value.rename_to == rename_to and info.value.named == "." + name.rsplit(".", 1)[1]
    assert isinstance(info.value, UnsupportedFileType)


def test_a_refused_file_never_reaches_a_parser(write_file, monkeypatch):
    def explode(*args, **kwargs):
        raise AssertionError("the PDF parser saw a ZIP archive")

    monkeypatch.setattr("ingest.loaders.pdf.PdfReader", explode)
    with pytest.raises(FileTypeMismatch):
        load_file(write_file("보고.pdf", _zip(**{"a.txt": "가"})))


def test_content_the_named_format_reads_or_refuses_itself_goes_to_its_loader(write_file, build):
    # a JPEG named .png is an image all the same (here: OCR is not installed)
    jpeg = io.BytesIO()
    Image.new("L", (8, 8), 255).save(jpeg, format="JPEG")
    assert isinstance(_error(write_file("사진.png", jpeg.getvalue())), NeedsOcrError)
    # an OLE file named .docx is how Office stores a password-protected document
    assert isinstance(_error(write_file("잠김.docx", build.ole({"EncryptedPackage": b"\0" * 64}))),
                      EncryptedDocumentError)
    # a ZIP that is no Office document: the loader says what is missing
    assert _error(write_file("다른.docx", _zip(**{"hello.xml": "<a/>"}))).reason.startswith("not a valid .docx file")
    # text without any signature named .pdf: the PDF loader's own words
    assert _error(write_file("가짜.pdf", "연차휴가는 15일이다.".encode())).reason.startswith("corrupt PDF")
    # HTML source kept in a .txt is text; "MZ세대" starts Korean text, not a Windows program
    assert load_one(write_file("소스.txt", HTML)).text == HTML.decode()
    assert load_one(write_file("세대.txt", "MZ세대 직원의 이직률이 높다.".encode())).text == "MZ세대 직원의 이직률이 높다."


def _error(path) -> LoadError:
    with pytest.raises(LoadError) as info:
        load_file(path)
    return info.value
