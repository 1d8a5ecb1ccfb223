"""OCR for scanned pages and photos: Tesseract with its Korean model, results cached by image hash.

    ocr = Ocr(cache_dir=Path("index/ocr-cache"))       # None from Ocr.find(...) when tesseract is missing
    page = ocr.read(image)                             # PIL image -> OcrPage(text, confidence, words)
    page.text        -> "연차휴가는 15일이다.\\n병가는 60일이다."   (lines as read; reflowed when chunked)
    page.confidence  -> 91.3   (mean word confidence, 0-100; `LOW_CONFIDENCE` flags a page)

Tesseract runs as a subprocess (`tesseract page.png stdout -l kor+eng --psm 4 tsv`) with a time limit per page, so
one bad page can neither hang nor crash the ingest; its word boxes come back with the text.
The image is made grayscale and scaled so a page is read at about `TARGET_WIDTH` pixels
(Tesseract binarizes with Otsu itself). A page's result is stored under the SHA-256 of the
image's pixels and the OCR settings, so a re-index never reads an unchanged page twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

LANG = "kor+eng"
TARGET_WIDTH = 2480  # pixels: an A4 page at 300 dpi, what Tesseract reads best
# Page segmentation: one column of text of varying sizes. Tesseract's automatic mode (3) read a
# plain Korean notice as vertical columns of single syllables; mode 4 read it exactly.
PSM = "4"
LOW_CONFIDENCE = 60.0  # a page read with less mean word confidence is flagged
PAGE_TIMEOUT_S = 120.0
RENDER_DPI = 300  # a scanned PDF page is rendered at this resolution (or fewer pixels, see render_scan)
# What to install where OCR is missing (Debian/Ubuntu package names).
INSTALL_HINT = "install Tesseract with its Korean model: apt-get install tesseract-ocr tesseract-ocr-kor"


@dataclass(frozen=True)
class Word:
    """One recognized word and its box in the page image's pixels."""

    text: str
    left: int
    top: int
    width: int
    height: int
    confidence: float


@dataclass
class OcrPage:
    """A page as read: its text (one line per line read, paragraphs apart by a blank line),
    the mean word confidence (0-100; 0 when nothing was read), its words with boxes, and the
    page image's size (for boxes drawn over a rendered page)."""

    text: str
    confidence: float
    words: list[Word] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)

    @property
    def low_confidence(self) -> bool:
        return self.confidence < LOW_CONFIDENCE


class OcrError(Exception):
    """Tesseract failed on a page (crashed, timed out, or is not installed)."""


class OcrBudgetSpent(OcrError):
    """A `sampling` Ocr has read as many pages as it may: the loader stops OCR there."""


def tesseract_languages(binary: str = "tesseract") -> set[str]:
    """The language models Tesseract has ({"eng", "kor", "osd"}), or an empty set without it."""
    path = shutil.which(binary)
    if path is None:
        return set()
    try:
        out = subprocess.run([path, "--list-langs"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return set()
    return {line.strip() for line in out.stdout.splitlines()[1:] if line.strip()}


class Ocr:
    """Tesseract OCR with a cache (see the module docstring).

    Args:
        cache_dir: where page results are kept (created on first use); None: no cache.
        lang: Tesseract languages, "kor+eng" by default (Korean with Latin words and digits).
        timeout_s: the longest one page may take.
    """

    def __init__(self, cache_dir: Path | None = None, lang: str = LANG, timeout_s: float = PAGE_TIMEOUT_S,
                 binary: str = "tesseract") -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.lang = lang
        self.timeout_s = timeout_s
        self.binary = binary
        self.reads = 0  # pages actually given to Tesseract (not served from the cache)

    @classmethod
    def find(cls, cache_dir: Path | None = None, lang: str = LANG, **kwargs) -> Ocr | None:
        """An Ocr when Tesseract and every language in `lang` are installed, else None (logged)."""
        have = tesseract_languages(kwargs.get("binary", "tesseract"))
        missing = [code for code in lang.split("+") if code not in have]
        if missing:
            log.info("OCR off: %s (missing: %s)", INSTALL_HINT, ", ".join(missing) if have else "tesseract")
            return None
        return cls(cache_dir, lang, **kwargs)

    def sampling(self, pages: int) -> Ocr:
        """This Ocr, limited to `pages` pages read (cached or not): a quick look at a scan (an
        upload is checked this way before it is accepted; its ingest job reads every page)."""
        sample = Ocr(self.cache_dir, self.lang, self.timeout_s, self.binary)
        sample.budget = pages
        sample.stores = False  # a refused upload leaves nothing behind, not even cache entries
        return sample

    budget: int | None = None  # pages this Ocr may still read; None: no limit
    stores = True  # writes what it reads to the cache

    def key(self, image) -> str:
        """The cache key of a page image: its mode, size and pixels, and the OCR settings."""
        digest = hashlib.sha256(f"{image.mode}:{image.size}:{self.lang}:{TARGET_WIDTH}:{PSM}:v1".encode())
        digest.update(image.tobytes())
        return digest.hexdigest()

    def read(self, image) -> OcrPage:
        """Read one page image (PIL). Raises OcrError when Tesseract fails or times out, and
        OcrBudgetSpent when a `sampling` Ocr has read its pages."""
        if self.budget is not None:
            if self.budget <= 0:
                raise OcrBudgetSpent("sampled pages read")
            self.budget -= 1
        key = self.key(image)
        cached = self._cached(key)
        if cached is not None:
            return cached
        page = self._tesseract(_prepared(image))
        self.reads += 1
        self._store(key, page)
        return page

    # ------------------------------------------------------------------ internals
    def cached(self, image) -> OcrPage | None:
        """This image's OCR result from the cache, never running Tesseract (None: not cached)."""
        return self._cached(self.key(image))

    def _tesseract(self, image) -> OcrPage:
        with tempfile.TemporaryDirectory(prefix="chulcheo-ocr-") as tmp:
            png = Path(tmp) / "page.png"
            image.save(png)
            cmd = [self.binary, str(png), "stdout", "-l", self.lang, "--psm", PSM, "tsv"]
            env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # one core per page: the pool runs pages side by side
            try:
                out = subprocess.run(cmd, capture_output=True, timeout=self.timeout_s, check=False, env=env)
            except subprocess.TimeoutExpired as exc:
                raise OcrError(f"OCR took longer than {self.timeout_s:.0f} s") from exc
            except OSError as exc:
                raise OcrError(f"cannot run tesseract: {exc}") from exc
        if out.returncode != 0:
            raise OcrError(f"tesseract failed ({out.returncode}): {out.stderr.decode(errors='replace').strip()[:200]}")
        return parse_tsv(out.stdout.decode("utf-8", errors="replace"), image.size)

    def _path(self, key: str) -> Path | None:
        return self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir is not None else None

    def _cached(self, key: str) -> OcrPage | None:
        path = self._path(key)
        if path is None or not path.is_file():
            return None
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return OcrPage(raw["text"], raw["confidence"], [Word(**w) for w in raw["words"]], tuple(raw["size"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is read again

    def _store(self, key: str, page: OcrPage) -> None:
        path = self._path(key)
        if path is None or not self.stores:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(page), ensure_ascii=False), encoding="utf-8")
            tmp.replace(path)  # a reader never sees half an entry
        except OSError as exc:
            log.warning("OCR cache not written (%s): %s", path, exc)


def render_scan(page, max_pixels: int):
    """A scanned PDF page (pypdfium2 PdfPage) as the grayscale PIL image OCR reads: ~RENDER_DPI,
    at most `max_pixels`. The same page always renders to the same pixels, so the page viewer
    finds this page's OCR result (and its word boxes) in the cache under the same key."""
    width, height = page.get_size()  # points
    scale = min(RENDER_DPI / 72, (max_pixels / max(width * height, 1.0)) ** 0.5)
    return page.render(scale=scale, grayscale=True).to_pil()


def _prepared(image):
    """Grayscale, scaled so the page is about TARGET_WIDTH wide (never above 2x up)."""
    gray = image.convert("L")
    width, height = gray.size
    scale = min(2.0, TARGET_WIDTH / max(width, 1))
    if abs(scale - 1.0) > 0.1:
        gray = gray.resize((max(1, round(width * scale)), max(1, round(height * scale))))
    return gray


def parse_tsv(tsv: str, size: tuple[int, int] = (0, 0)) -> OcrPage:
    """Tesseract's TSV -> OcrPage: words in reading order, a line per (block, paragraph, line),
    a blank line between paragraphs.

    parse_tsv("level\\tpage_num\\tblock_num\\tpar_num\\tline_num\\tword_num\\tleft\\ttop\\twidth\\theight\\tconf\\ttext\\n"
              "5\\t1\\t1\\t1\\t1\\t1\\t10\\t10\\t50\\t20\\t95\\t연차휴가는\\n").text -> "연차휴가는"
    """
    lines: dict[tuple[int, int, int], list[str]] = {}
    words: list[Word] = []
    rows = tsv.splitlines()
    for row in rows[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = cols[11].strip()
        if not text:
            continue
        try:
            block, par, line = int(cols[2]), int(cols[3]), int(cols[4])
            left, top, width, height = (int(c) for c in cols[6:10])
            conf = float(cols[10])
        except ValueError:
            continue
        lines.setdefault((block, par, line), []).append(text)
        words.append(Word(text, left, top, width, height, conf))
    out: list[str] = []
    last_par: tuple[int, int] | None = None
    for (block, par, _), ws in lines.items():
        if last_par is not None and (block, par) != last_par:
            out.append("")
        out.append(" ".join(ws))
        last_par = (block, par)
    scored = [w.confidence for w in words if w.confidence >= 0]
    confidence = sum(scored) / len(scored) if scored else 0.0
    return OcrPage("\n".join(out).strip(), round(confidence, 1), words, size)
