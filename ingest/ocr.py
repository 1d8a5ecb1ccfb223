"""OCR for scanned pages and photos: Tesseract with its Korean model, results cached by image hash.

    ocr = Ocr(cache_dir=Path("index/ocr-cache"))       # None from Ocr.find(...) when tesseract is missing
    page = ocr.read(image)                             # PIL image -> OcrPage(text, confidence, words)
    page.text        -> "연차휴가는 15일이다.\\n병가는 60일이다."   (lines as read; reflowed when chunked)
    page.confidence  -> 91.3   (mean word confidence, 0-100; `LOW_CONFIDENCE` flags a page)

Tesseract runs as a subprocess (`tesseract page.png stdout -l kor+eng --psm 4 tsv`) with a time limit per page, so
one bad page can neither hang nor crash the ingest; its word boxes come back with the text.
The image is made grayscale and scaled so a page is read at about `TARGET_WIDTH` pixels, then
cleaned where that helps (`Cleanup`, measured in docs/benchmarks.md "OCR"): a noisy scan is
median-filtered, and a page turned by more than `MIN_SKEW` degrees is turned straight, its word
boxes mapped back onto the page as it was (the page viewer draws them over the unturned page).
Tesseract binarizes with Otsu itself. A page's result is stored under the SHA-256 of the
image's pixels and the OCR settings, so a re-index never reads an unchanged page twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

K = TypeVar("K")
_COUNT = threading.Lock()  # Ocr.reads, counted by read_many's workers

log = logging.getLogger(__name__)

LANG = "kor+eng"
TARGET_WIDTH = 2480  # pixels: an A4 page at 300 dpi, what Tesseract reads best
# Page segmentation: one column of text of varying sizes. Tesseract's automatic mode (3) read a
# plain Korean notice as vertical columns of single syllables; mode 4 read it exactly.
PSM = "4"
LOW_CONFIDENCE = 60.0  # a page read with less mean word confidence is flagged
PAGE_TIMEOUT_S = 120.0
RENDER_DPI = 300  # a scanned PDF page is rendered at this resolution (or fewer pixels, see render_scan)
MAX_SKEW = 3.0  # degrees: the skew searched for (a scanner or a fax turns a page by a degree or two)
MIN_SKEW = 0.25  # degrees: a page turned by less is read as it is (turning blurs it a little)
NOISE_LEVEL = 1.0  # mean grey-level change a 3x3 median makes to the background: above it, the page is noisy
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


@dataclass(frozen=True)
class Cleanup:
    """What is done to a page image before Tesseract reads it (each only where it applies)."""

    denoise: bool = True  # a 3x3 median filter on a page whose background is noisy (`NOISE_LEVEL`)
    deskew: bool = True  # turn a page skewed by MIN_SKEW..MAX_SKEW degrees straight
    binarize: bool = False  # Otsu to black and white ourselves (off: Tesseract does it, and it measured no better)

    def tag(self) -> str:
        return "".join(name[0] if on else "-" for name, on in
                       (("denoise", self.denoise), ("deskew", self.deskew), ("binarize", self.binarize)))


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
        cleanup: what is done to a page before it is read (default: denoise and deskew where needed).
    """

    def __init__(self, cache_dir: Path | None = None, lang: str = LANG, timeout_s: float = PAGE_TIMEOUT_S,
                 binary: str = "tesseract", cleanup: Cleanup = Cleanup()) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.lang = lang
        self.timeout_s = timeout_s
        self.binary = binary
        self.cleanup = cleanup
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
        sample = Ocr(self.cache_dir, self.lang, self.timeout_s, self.binary, self.cleanup)
        sample.budget = pages
        sample.stores = False  # a refused upload leaves nothing behind, not even cache entries
        return sample

    budget: int | None = None  # pages this Ocr may still read; None: no limit
    stores = True  # writes what it reads to the cache
    # Pages read side by side by read_many (one Tesseract process each, one core each).
    workers: int = max(1, min(4, os.cpu_count() or 1))
    # Called after each page read_many finishes: on_page(pages done, pages in all); the index
    # build points it at its progress bar ("ocr" stage).
    on_page: Callable[[int, int], None] | None = None

    def read_many(self, pages: Iterable[tuple[K, Any]], total: int) -> Iterator[tuple[K, OcrPage | Exception]]:
        """Read page images side by side (`workers` at a time), yielding (key, result or the error)
        in the order given. `pages` yields (key, PIL image, or an exception for a page that could
        not be rendered) and is consumed in this thread (pdfium is not thread-safe), at most
        2 x workers pages ahead of the results (memory stays bounded). OcrBudgetSpent ends it.

        for number, result in ocr.read_many(((n, render(n)) for n in numbers), len(numbers)): ...
        """
        workers = 1 if self.budget is not None else self.workers  # a sampling budget counts one by one
        done = 0
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chulcheo-ocr") as pool:
            pending: deque[tuple[K, Future | Exception]] = deque()

            def finish() -> tuple[K, OcrPage | Exception]:
                nonlocal done
                key, job = pending.popleft()
                try:
                    result: OcrPage | Exception = job.result() if isinstance(job, Future) else job
                except OcrBudgetSpent:
                    raise
                except Exception as exc:  # OcrError, or a page that failed to prepare: the caller decides
                    result = exc
                done += 1
                if self.on_page is not None:
                    self.on_page(done, total)
                return key, result

            for key, image in pages:
                pending.append((key, image if isinstance(image, Exception) else pool.submit(self.read, image)))
                while len(pending) > 2 * workers:
                    yield finish()
            while pending:
                yield finish()

    def key(self, image, version: str = "v2") -> str:
        """The cache key of a page image: its mode, size and pixels, and the OCR settings.
        v2: pages cleaned (`Cleanup`) before Tesseract; v1 keys (read as prepared) name no clean-up."""
        cleanup = f":{self.cleanup.tag()}" if version != "v1" else ""
        settings = f"{self.lang}:{TARGET_WIDTH}:{PSM}{cleanup}:{version}"
        digest = hashlib.sha256(f"{image.mode}:{image.size}:{settings}".encode())
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
        prepared = _prepared(image)
        cleaned, angle = cleaned_page(prepared, self.cleanup)
        page = self._tesseract(cleaned)
        if angle:
            page.words = [unturn_box(w, angle, cleaned.size, prepared.size) for w in page.words]
        page.size = prepared.size  # boxes are in the prepared page's pixels, as the viewer renders it
        with _COUNT:
            self.reads += 1
        self._store(key, page)
        return page

    # ------------------------------------------------------------------ internals
    def cached(self, image) -> OcrPage | None:
        """This image's OCR result from the cache, never running Tesseract (None: not cached).
        A page indexed before pages were cleaned (a v1 entry) is found too: its word boxes are in
        the same prepared page's pixels, so the viewer still boxes its quotes until it is read again."""
        return self._cached(self.key(image)) or self._cached(self.key(image, "v1"))

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
            # a name of its own: two workers may read the same page (a form's blank pages) at once
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
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


def cleaned_page(image, cleanup: Cleanup = Cleanup()):
    """The prepared page as Tesseract reads it, and the angle (degrees, counter-clockwise) it was
    turned by to straighten it (0.0: not turned). Denoising comes first: turning a noisy page
    smears its specks into blobs a median filter no longer removes."""
    from PIL import Image

    if cleanup.denoise:
        image = _denoised(image)
    angle = 0.0
    if cleanup.deskew:
        skew = estimate_skew(image)
        if abs(skew) >= MIN_SKEW:
            angle = -skew
            image = image.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    if cleanup.binarize:
        threshold = _otsu(np.asarray(image))
        image = image.point(lambda v: 255 if v > threshold else 0)
    return image, angle


def _denoised(image):
    """The page median-filtered (3x3) when its background is noisy, else unchanged: on a clean
    page the filter only nibbles at thin strokes (measured: it costs a clean page accuracy). A clean
    300 dpi scan measures ~0.1 here, the noisy 200 dpi fixture of tests/scans.py ~2.7."""
    from PIL import ImageFilter

    filtered = image.filter(ImageFilter.MedianFilter(3))
    before, after = np.asarray(image, dtype=np.int16), np.asarray(filtered, dtype=np.int16)
    background = after > 160
    if not background.any():
        return image
    noise = float(np.abs(before - after)[background].mean())
    return filtered if noise > NOISE_LEVEL else image


def estimate_skew(image, limit: float = MAX_SKEW, step: float = 0.05) -> float:
    """The angle (degrees, counter-clockwise as PIL's `rotate` turns) the page's text lines are
    turned by, within ±`limit`; 0.0 when the page shows no clear lines.

    Projection profiles: the page is shrunk to ~1000 pixels wide (averaging away noise) and
    binarized; for each candidate angle the ink pixels are projected onto the axis across
    that angle's lines, and the angle whose row profile is sharpest (largest sum of squared
    row counts: lines and gaps apart) wins.

    estimate_skew(page.rotate(1.5, fillcolor=255)) -> 1.5 (±0.1)
    """
    factor = max(1, image.width // 1000)
    small = np.asarray(image.reduce(factor) if factor > 1 else image, dtype=np.uint8)
    ink = small < _otsu(small)
    ys, xs = np.nonzero(ink)
    if len(ys) < 500 or ink.mean() > 0.5:
        return 0.0  # (almost) blank, or mostly dark: no lines to go by
    if len(ys) > 200_000:  # enough to see lines; keeps the search fast on dense pages
        keep = np.random.default_rng(0).choice(len(ys), 200_000, replace=False)
        ys, xs = ys[keep], xs[keep]
    xs = xs - small.shape[1] / 2.0
    angles = np.arange(-limit, limit + step / 2, step)
    scores = []
    for angle in angles:
        # a line turned counter-clockwise by `angle` rises to the right: y + x·tan(angle) is level along it
        rows = np.round(ys + xs * math.tan(math.radians(angle))).astype(np.int64)
        counts = np.bincount(rows - rows.min())
        scores.append(float(np.dot(counts, counts)))
    best = int(np.argmax(scores))
    flat = scores[len(angles) // 2]  # the profile of the page as it is
    if best in (0, len(angles) - 1) or scores[best] < 1.02 * flat:
        return 0.0  # at the edge of the search, or barely sharper than as it is: not a skewed text page
    return round(float(angles[best]), 2)


def unturn_box(word: Word, angle: float, turned_size: tuple[int, int], size: tuple[int, int]) -> Word:
    """A word box found on the page turned by `angle` degrees (PIL `rotate(angle, expand=True)`
    of a `size` page into `turned_size`) as the box that holds it on the page as it was: its
    corners turned back around the centres, their bounding box, clipped to the page."""
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    tcx, tcy = turned_size[0] / 2.0, turned_size[1] / 2.0
    cx, cy = size[0] / 2.0, size[1] / 2.0
    xs, ys = [], []
    for x, y in ((word.left, word.top), (word.left + word.width, word.top),
                 (word.left, word.top + word.height), (word.left + word.width, word.top + word.height)):
        dx, dy = x - tcx, y - tcy
        # the turned page shows the point (x, y) of the page at: turning counter-clockwise by
        # angle moved it to (dx·cos + dy·sin, -dx·sin + dy·cos); this undoes that
        xs.append(cx + dx * cos - dy * sin)
        ys.append(cy + dx * sin + dy * cos)
    left, top = max(0, math.floor(min(xs))), max(0, math.floor(min(ys)))
    right, bottom = min(size[0], math.ceil(max(xs))), min(size[1], math.ceil(max(ys)))
    return replace(word, left=left, top=top, width=max(0, right - left), height=max(0, bottom - top))


def _otsu(pixels) -> int:
    """Otsu's threshold of 8-bit grey pixels: the level that best splits them into two classes."""
    hist = np.bincount(np.asarray(pixels, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    weight = np.cumsum(hist)
    mean = np.cumsum(hist * np.arange(256))
    total, total_mean = weight[-1], mean[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (total_mean * weight - mean * total) ** 2 / (weight * (total - weight))
    return int(np.nanargmax(between[:-1])) if np.isfinite(between[:-1]).any() else 127


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
