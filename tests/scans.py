"""Scanned-page fixtures for the OCR tests and bench/ocr_accuracy.py: generated, never committed.

Korean company text (a 공문, a 규정, a 보고서) is rendered with a Hangul TrueType font onto A4
page images and wrapped into an image-only PDF, with the exact rendered text as ground truth:

    scan = clean_scan(find_korean_ttf())          # 300 dpi, as printed
    scan = noisy_scan(find_korean_ttf(), seed=0)  # 200 dpi, turned 1-2°, blurred, noise, specks
    scan.pdf        -> bytes of a PDF whose pages are only images (one per page of PAGES)
    scan.texts[0]   -> "정보보안 교육 실시 안내\\n가온정보 주식회사 정보보안팀\\n…"  (lines as rendered)
    char_accuracy("연차휴가는 15일", "연차휴가는 16일") -> 0.889  (1 - CER; whitespace runs count as one space)
    char_accuracy("연차휴가는 15일", "연 차휴가는 15 일", spaces=False) -> 1.0  (whitespace left out)

Everything is deterministic for a font and a seed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

# One string per page; paragraphs apart by "\n"; a page's first paragraph is its title.
PAGES = [
    """정보보안 교육 실시 안내
가온정보 주식회사 정보보안팀
수신: 각 부서장 / 시행일: 2025. 2. 24. / 문서번호: 정보보안팀-2025-031
1. 관련: 정보보안 규정 제12조(정기 교육) 및 정보보안팀-2024-118(2024. 11. 18.)
2. 2025년도 정기 정보보안 교육을 아래와 같이 실시하오니, 소속 직원이 빠짐없이 참석할 수 있도록 협조하여 주시기 바랍니다.
가. 교육 기간: 2025. 3. 10.(월) ~ 3. 21.(금), 2주간
나. 교육 대상: 전 직원 1,284명 (계약직 및 파견 인력 포함)
다. 교육 방법: 온라인 강의 2시간과 부서별 집합 교육 1시간
라. 소요 예산: 총 4,500만원 (외부 강사료 1,200만원 포함)
○ 미이수자는 2025년 4월 30일까지 보충 교육을 받아야 합니다.
○ 교육 결과는 2025년 하반기 인사 평가에 반영합니다.
○ 문의: 정보보안팀 김민준 책임 (내선 4417)
붙임: 교육 일정표 1부. 끝.""",
    """여비 규정
제1조(목적) 이 규정은 임직원의 국내외 출장에 드는 여비의 지급 기준을 정함을 목적으로 한다.
제2조(일비) ① 국내 출장의 일비는 1일 2만5천원으로 한다.
② 해외 출장의 일비는 별표 1의 지역별 정액으로 하되, 1일 미화 60달러를 넘지 못한다.
제3조(숙박비) 숙박비는 1박에 12만원을 한도로 실비를 지급한다. 다만, 서울특별시에서는 15만원을 한도로 한다.
제4조(항공 운임) 임원은 비즈니스석을, 그 밖의 직원은 일반석을 이용한다. 비행 시간이 8시간을 넘는 경우에는 부장 이상에게 비즈니스석을 허용할 수 있다.
제5조(정산) 출장자는 귀임한 날부터 7일 이내에 영수증을 붙여 여비를 정산하여야 한다.
제6조(개인 경비) 출장 중 개인적으로 쓴 비용은 회사가 부담하지 아니한다.
부칙 이 규정은 2024년 7월 1일부터 시행한다.""",
    """2024년 4분기 사업 실적 보고
작성: 경영기획실 / 보고일: 2025년 1월 15일
□ 매출 현황
○ 4분기 매출액은 128억 4천만원으로 전년 동기 대비 12.6% 증가하였다.
○ 영업이익은 17억 2천만원이며, 영업이익률은 13.4%이다.
□ 사업별 실적
○ 클라우드 사업: 매출 52억원, 신규 고객 38개사 확보
○ 보안 솔루션 사업: 매출 41억원, 공공기관 수주 9건
○ 유지보수 사업: 매출 35억 4천만원, 재계약률 94%
□ 향후 계획
○ 2025년 매출 목표는 560억원이며, 매출의 8%를 연구개발에 투자한다.
○ 3월 중 판교 제2연구소를 열고 연구 인력 45명을 충원한다.
※ 세부 내역은 붙임 자료를 참고하시기 바랍니다.""",
]

A4_INCHES = (8.27, 11.69)
BODY_PT, TITLE_PT = 12, 17
MARGIN_INCHES = 1.0
CLEAN_DPI, NOISY_DPI = 300, 200


@dataclass(frozen=True)
class Scan:
    """Page images, the image-only PDF that holds them, and each page's rendered text."""

    pdf: bytes
    images: list[Image.Image]
    texts: list[str]
    dpi: int
    skews: list[float]  # degrees each page was turned (counter-clockwise), 0 for a straight page


def printed_page(text: str, font: Path, dpi: int = CLEAN_DPI) -> tuple[Image.Image, str]:
    """One A4 page: the first paragraph as a title, the others wrapped at spaces to the margins.

    Returns the grayscale image and the text as rendered (one line per printed line)."""
    width, height = (round(side * dpi) for side in A4_INCHES)
    margin = round(MARGIN_INCHES * dpi)
    paragraphs = text.split("\n")
    title_font = ImageFont.truetype(str(font), round(TITLE_PT * dpi / 72))
    body_font = ImageFont.truetype(str(font), round(BODY_PT * dpi / 72))
    lines = [(paragraphs[0], title_font, 0.9)]  # (line, font, gap after it, in body lines)
    for paragraph in paragraphs[1:]:
        wrapped = wrap(paragraph, body_font, width - 2 * margin)
        lines += [(line, body_font, 0.0) for line in wrapped[:-1]] + [(wrapped[-1], body_font, 0.45)]
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    pitch = body_font.size * 1.6
    y = float(margin)
    for line, line_font, gap in lines:
        draw.text((margin, round(y)), line, font=line_font, fill=0)
        y += line_font.size * 1.6 + gap * pitch
    if y > height - margin // 2:
        raise ValueError(f"page text does not fit on one A4 page at {dpi} dpi")
    return image, "\n".join(line for line, _, _ in lines)


def lines_image(lines: list[str], font: Path, size: tuple[int, int], font_px: int, at: tuple[int, int],
                pitch: int) -> Image.Image:
    """A white RGB image with `lines` printed from `at`, one every `pitch` pixels (a photographed notice)."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    face = ImageFont.truetype(str(font), font_px)
    for i, line in enumerate(lines):
        draw.text((at[0], at[1] + pitch * i), line, font=face, fill="black")
    return image


def wrap(paragraph: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Break a paragraph at spaces into lines no wider than `width` pixels (a word never split)."""
    lines: list[str] = []
    line = ""
    for word in paragraph.split(" "):
        candidate = f"{line} {word}" if line else word
        if line and font.getlength(candidate) > width:
            lines.append(line)
            line = word
        else:
            line = candidate
    return lines + [line]


def degrade(image: Image.Image, skew: float, seed: int, noise: float = 18.0, specks: float = 0.004,
            blur: float = 0.7) -> Image.Image:
    """A page as a cheap scanner returns it: turned `skew` degrees (counter-clockwise), slightly
    blurred, with gaussian noise of `noise` grey levels and a `specks` share of pixels flipped to
    black or white (salt and pepper)."""
    turned = image.rotate(skew, resample=Image.Resampling.BICUBIC, fillcolor=255)
    blurred = turned.filter(ImageFilter.GaussianBlur(blur))
    rng = np.random.default_rng(seed)
    pixels = np.asarray(blurred, dtype=np.float32) + rng.normal(0.0, noise, blurred.size[::-1])
    flip = rng.random(pixels.shape)
    pixels[flip < specks / 2] = 0
    pixels[(flip >= specks / 2) & (flip < specks)] = 255
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def image_pdf(images: list[Image.Image], dpi: int) -> bytes:
    """An image-only PDF with one page per image, sized so the image fills it at `dpi` (JPEG inside, as scanners write)."""
    out = io.BytesIO()
    first, *rest = images
    first.save(out, format="PDF", resolution=float(dpi), save_all=True, append_images=rest)
    return out.getvalue()


def clean_scan(font: Path, pages: list[str] = PAGES) -> Scan:
    """The pages at 300 dpi, straight and without noise."""
    rendered = [printed_page(text, font, CLEAN_DPI) for text in pages]
    images = [image for image, _ in rendered]
    return Scan(image_pdf(images, CLEAN_DPI), images, [text for _, text in rendered], CLEAN_DPI, [0.0] * len(images))


def noisy_scan(font: Path, pages: list[str] = PAGES, seed: int = 0) -> Scan:
    """The pages at 200 dpi, each turned by 1-2° (either way, seeded) and degraded (`degrade`)."""
    rng = np.random.default_rng(seed)
    skews = [round(float(rng.uniform(1.0, 2.0) * rng.choice([-1, 1])), 2) for _ in pages]
    rendered = [printed_page(text, font, NOISY_DPI) for text in pages]
    images = [degrade(image, skew, seed + i) for i, ((image, _), skew) in enumerate(zip(rendered, skews))]
    return Scan(image_pdf(images, NOISY_DPI), images, [text for _, text in rendered], NOISY_DPI, skews)


def normalized(text: str, spaces: bool = True) -> str:
    """Whitespace runs (spaces, line breaks) as one space, ends trimmed: OCR's line and paragraph
    breaks are not errors. spaces=False: no whitespace at all (letters, digits and marks only)."""
    return " ".join(text.split()) if spaces else "".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over characters (insert, delete, substitute: 1 each).

    edit_distance("15일", "16일") -> 1"""
    if not a or not b:
        return len(a) + len(b)
    codes_b = np.array([ord(ch) for ch in b])
    steps = np.arange(len(b) + 1)
    row = steps.copy()
    for i, ch in enumerate(a, 1):
        # substitution or deletion per column, then insertions along the row as a running minimum
        best = np.empty_like(row)
        best[0] = i
        best[1:] = np.minimum(row[:-1] + (codes_b != ord(ch)), row[1:] + 1)
        row = np.minimum.accumulate(best - steps) + steps
    return int(row[-1])


def char_errors(reference: str, read: str, spaces: bool = True) -> tuple[int, int]:
    """(edits, reference characters) between the normalized texts: sum them over pages for a CER."""
    ref, hyp = normalized(reference, spaces), normalized(read, spaces)
    return edit_distance(ref, hyp), len(ref)


def char_accuracy(reference: str, read: str, spaces: bool = True) -> float:
    """1 - CER: one minus the edit distance between the normalized texts over the reference's
    length. spaces=False leaves whitespace out of both (Tesseract's Korean model puts spaces
    inside words: "정 보 보안" for "정보보안")."""
    edits, length = char_errors(reference, read, spaces)
    return 1.0 - edits / max(length, 1)
