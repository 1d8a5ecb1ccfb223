"""OCR character accuracy and pages per minute on generated scans, through the real loader.

The pages of tests/scans.py (a 공문, a 규정, a 보고서) as an image-only PDF at 300 dpi (clean)
and at 200 dpi turned 1-2° with blur, noise and specks (noisy; `--seeds` versions of it),
read by `ingest.load.load_file` with the real Tesseract and no cache, once per page clean-up
(`ingest.ocr.Cleanup`): none (the baseline: Tesseract on the grayscale, scaled page, as before
clean-up existed), denoise only, deskew only, both (the default) and both + our own Otsu.

Accuracy is 1 - CER against the rendered text, character-weighted over pages, three ways:
`spaced` (whitespace runs count as one space), `letters` (whitespace left out: Tesseract's
Korean model puts spaces inside words, "정 보 보안") and `kiwi_spaced` (spaced, after Kiwi's
spacing model re-spaced each line: a measured remedy, not what the loader does). Speed: the
default clean-up and none (the baseline), `--runs` runs each, median pages per minute, one
page after another (as `chulcheo ingest` reads a file) and two files side by side (2 cores).

    .venv/bin/python bench/ocr_accuracy.py --seeds 2 --runs 3 --out ocr.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import emit  # noqa: E402
from kiwipiepy import Kiwi  # noqa: E402

from ingest.load import load_file  # noqa: E402
from ingest.ocr import Cleanup, Ocr  # noqa: E402
from tests.pdfs import find_korean_ttf  # noqa: E402
from tests.scans import Scan, char_errors, clean_scan, noisy_scan  # noqa: E402

CLEANUPS = {
    "none": Cleanup(denoise=False, deskew=False),
    "denoise": Cleanup(denoise=True, deskew=False),
    "deskew": Cleanup(denoise=False, deskew=True),
    "denoise+deskew": Cleanup(),
    "denoise+deskew+binarize": Cleanup(binarize=True),
}


def read(path: Path, cleanup: Cleanup) -> list[str]:
    """Each page's OCR text, as the loader gives it (no cache: every page is read)."""
    (doc,) = load_file(path, ocr=Ocr(None, cleanup=cleanup))
    by_page = {b.page: b.text for b in doc.blocks}
    return [by_page.get(n, "") for n in range(1, max(doc.pages) + 1)]


def accuracy(pairs: list[tuple[str, str]], respace) -> dict:
    """Character-weighted 1 - CER over (rendered text, OCR text) pages, each way, and per page."""
    totals = {"spaced": [0, 0], "letters": [0, 0], "kiwi_spaced": [0, 0]}
    pages = []
    for truth, text in pairs:
        row = {}
        for name, spaces, read_text in (("spaced", True, text), ("letters", False, text),
                                        ("kiwi_spaced", True, respace(text))):
            edits, length = char_errors(truth, read_text, spaces)
            totals[name][0] += edits
            totals[name][1] += length
            row[name] = round(1 - edits / length, 4)
        pages.append(row)
    return {name: round(1 - edits / length, 4) for name, (edits, length) in totals.items()} | {"pages": pages}


def pages_per_minute(paths: list[Path], pages: int, runs: int, side_by_side: int, cleanup: Cleanup) -> dict:
    """Median pages/minute of reading `paths`, `side_by_side` files at a time."""
    rates = []
    for _ in range(runs):
        t0 = time.perf_counter()
        with ThreadPoolExecutor(side_by_side) as pool:
            list(pool.map(lambda p: read(p, cleanup), paths))
        rates.append(pages * 60 / (time.perf_counter() - t0))
    return {"median": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=2, help="noisy versions of the pages (each its own skews and noise)")
    parser.add_argument("--runs", type=int, default=3, help="runs of the speed measurement")
    parser.add_argument("--cleanups", default=",".join(CLEANUPS), help="comma-separated, of: " + ", ".join(CLEANUPS))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    font = find_korean_ttf()
    if font is None:
        raise SystemExit("no Hangul TrueType font: apt-get install fonts-nanum")
    if Ocr.find() is None:
        raise SystemExit("Tesseract with its Korean model is missing: apt-get install tesseract-ocr tesseract-ocr-kor")
    work = Path(tempfile.mkdtemp(prefix="chulcheo-ocr-bench-"))
    sets: dict[str, list[tuple[Scan, Path]]] = {"clean_300dpi": [], "noisy_200dpi": []}
    for name, scan in [("clean_300dpi", clean_scan(font))] + [("noisy_200dpi", noisy_scan(font, seed=s))
                                                              for s in range(args.seeds)]:
        path = work / f"{name}-{len(sets[name])}.pdf"
        path.write_bytes(scan.pdf)
        sets[name].append((scan, path))

    result: dict = {
        "pages": {name: sum(len(s.texts) for s, _ in scans) for name, scans in sets.items()},
        "noisy_skews": [s.skews for s, _ in sets["noisy_200dpi"]],
        "accuracy": {},
    }
    kiwi = Kiwi()

    def respace(text: str) -> str:
        return "\n".join(kiwi.space(line, reset_whitespace=True) for line in text.splitlines())

    jobs = [(cleanup, name, scan, path) for cleanup in args.cleanups.split(",") for name in sets
            for scan, path in sets[name]]
    with ThreadPoolExecutor(2) as pool:  # accuracy does not depend on timing: both cores at once
        texts = list(pool.map(lambda job: read(job[3], CLEANUPS[job[0]]), jobs))
    for cleanup in args.cleanups.split(","):
        for name in sets:
            pairs = [pair for (c, n, scan, _), read_texts in zip(jobs, texts) if (c, n) == (cleanup, name)
                     for pair in zip(scan.texts, read_texts)]
            figures = accuracy(pairs, respace)
            result["accuracy"].setdefault(cleanup, {})[name] = figures
            print(cleanup, name, {k: v for k, v in figures.items() if k != "pages"}, flush=True)

    paths = [path for scans in sets.values() for _, path in scans]
    pages = sum(result["pages"].values())
    result["pages_per_minute"] = {
        cleanup: {"one_after_another": pages_per_minute(paths, pages, args.runs, 1, CLEANUPS[cleanup]),
                  "two_side_by_side": pages_per_minute(paths, pages, args.runs, 2, CLEANUPS[cleanup])}
        for cleanup in ("denoise+deskew", "none")
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
