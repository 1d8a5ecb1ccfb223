"""The web UI in a real browser: the shared real `chulcheo serve` (`live_server`: sample corpus,
real default embedding model, the 0.5B GGUF) driven by headless Chromium.

Log in with an API key, ask a question and see its citation card, then upload a document as
admin, watch it get indexed and find it with the admin search. Screenshots go to artifacts/browser/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "artifacts" / "browser"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NEW_FACT = "사내 동호회 지원금은 분기마다 12만 원이다."
NEW_FILE = "동호회_지원금.txt"
SAMPLE_FILES = ("취업규칙.md", "복리후생_안내.txt", "정보보안_정책.html")

# Checked before any fixture runs, so a machine without a browser does not start the server for nothing.
if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
    pytest.skip(f"{CHROMIUM} or {CHROMEDRIVER} not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)
pytest.importorskip("selenium")

from selenium import webdriver  # noqa: E402  (after the skips above)
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,1600", "--lang=ko-KR"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "ko-KR,ko"})  # a Korean employee's browser
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _text(driver, css: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def _until(driver, what: str, check, timeout: float):
    """Wait for check(driver) to be truthy; a timeout names what was awaited."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=1).until(check)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}") from None


def test_login_ask_with_citation_then_upload_index_and_search(live_server, browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    d = browser
    try:
        # log in: name = key name, password = the key
        d.get(live_server["url"] + "/")
        _until(d, "the login form", lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=password]"), 60)
        assert "API 키" in d.find_element(By.TAG_NAME, "body").text
        d.find_element(By.ID, "username").send_keys("admin")  # our /login form (a session bound to the key)
        d.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(live_server["admin"])
        d.find_element(By.ID, "login").click()
        box = _until(d, "the chat box", lambda d: d.find_element(By.CSS_SELECTOR, "#ck-question textarea"), 60)
        _until(d, "the login name in the header", lambda d: "admin" in _text(d, "#ck-who"), 30)

        # ask: checked sentences stream in, then the citation card of the source
        box.send_keys("연차휴가는 며칠인가요?")
        d.find_element(By.ID, "ck-send").click()
        _until(d, "a citation card", lambda d: d.find_elements(By.CSS_SELECTOR, "#ck-cards .ck-card"), 240)
        card = d.find_element(By.CSS_SELECTOR, "#ck-cards .ck-card")
        assert any(name in card.text for name in SAMPLE_FILES), card.text
        assert card.find_elements(By.TAG_NAME, "mark"), "the supporting quote is highlighted"
        chat = _text(d, "#ck-chat")
        assert "[1]" in chat and "확인 중" not in chat, chat
        d.save_screenshot(str(SHOTS / "chat.png"))
        thumbs_down = [b for b in d.find_elements(By.CSS_SELECTOR, "#ck-chat button")
                       if re.search("dislike|싫어", f"{b.get_attribute('aria-label')} {b.get_attribute('title')}", re.I)]
        assert thumbs_down, "the answer has a thumbs-down button"
        thumbs_down[0].click()
        _until(d, "the feedback toast", lambda d: "의견을 저장했습니다" in d.find_element(By.TAG_NAME, "body").text, 30)

        # admin: upload a new document, see it indexed, find it with the search
        d.find_element(By.XPATH, "//button[@role='tab' and normalize-space()='관리']").click()
        doc = tmp_path / NEW_FILE
        doc.write_text(NEW_FACT + "\n", encoding="utf-8")
        d.find_element(By.CSS_SELECTOR, "#ck-files input[type=file]").send_keys(str(doc))
        _until(d, "the file to reach the server", lambda d: "동호회_지원금" in _text(d, "#ck-files"), 60)
        d.find_element(By.ID, "ck-upload").click()
        _until(d, "the upload result", lambda d: "색인 완료" in _text(d, "#ck-upload-result"), 180)
        assert f"{NEW_FILE}: 색인 완료" in _text(d, "#ck-upload-result")
        rows = _until(d, "the new document's row", lambda d: [
            r.text for r in d.find_elements(By.CSS_SELECTOR, "#ck-docs [role=row]") if NEW_FILE in r.text], 60)
        assert "색인됨" in rows[0], rows
        d.find_element(By.CSS_SELECTOR, "#ck-search textarea").send_keys("동호회 지원금은 얼마인가요?")
        d.find_element(By.ID, "ck-search-btn").click()
        _until(d, "the new document in the search results",
               lambda d: NEW_FILE in _text(d, "#ck-search-result") and "12만 원" in _text(d, "#ck-search-result"), 120)
        d.save_screenshot(str(SHOTS / "admin.png"))
    except Exception as exc:
        d.save_screenshot(str(SHOTS / "failure.png"))
        tail = "\n".join(live_server["log"].read_text(errors="replace").splitlines()[-60:])
        raise AssertionError(f"{exc}\n--- server log (last 60 lines) ---\n{tail}") from exc


PDF_FILE = "해외출장_여비규정.pdf"
PDF_PAGES = ["해외 출장 여비 규정\n제1조(목적) 이 규정은 해외 출장 여비의 지급 기준을 정한다.",
             "제2조(일비) 해외 출장의 일비는 하루 80달러로 한다. 숙박비는 실비로 정산하되 1박 200달러를 넘지 못한다."]


def test_source_view_shows_the_cited_pdf_page_with_the_span_boxed(live_server, browser):
    """원문 보기 on a PDF citation: the cited page's image loads (through /v1 with the session
    cookie) and the highlight boxes sit over printed text on it."""
    import io

    import httpx
    from PIL import Image

    from tests.pdfs import build_pdf, find_korean_ttf

    font = find_korean_ttf()
    if font is None:
        pytest.skip("no Hangul TrueType font (apt-get install fonts-nanum)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    r = httpx.post(live_server["url"] + "/v1/documents", params={"wait": "true"}, data={"group": "public"},
                   files={"file": (PDF_FILE, build_pdf(PDF_PAGES, font))},
                   headers={"Authorization": f"Bearer {live_server['admin']}"}, timeout=300)
    assert r.status_code == 200 and r.json()["job"]["status"] == "done", r.text
    d = browser
    try:
        d.get(live_server["url"] + "/")
        if d.find_elements(By.ID, "username"):  # this browser has not logged in yet
            d.find_element(By.ID, "username").send_keys("kim")
            d.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(live_server["user"])
            d.find_element(By.ID, "login").click()
        box = _until(d, "the chat box", lambda d: d.find_element(By.CSS_SELECTOR, "#ck-question textarea"), 60)
        box.send_keys("해외 출장의 일비는 하루 얼마인가요?")
        d.find_element(By.ID, "ck-send").click()
        card = _until(d, "a citation card of the PDF", lambda d: next(
            (c for c in d.find_elements(By.CSS_SELECTOR, "#ck-cards .ck-card") if PDF_FILE in c.text), None), 240)
        assert "2쪽" in card.text, card.text
        card.find_element(By.CSS_SELECTOR, "details.ck-src summary").click()
        image = card.find_element(By.CSS_SELECTOR, ".ck-page img")
        _until(d, "the page image to load", lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", image), 60)
        assert "/pages/2.png" in image.get_attribute("src")
        marks = card.find_elements(By.CSS_SELECTOR, ".ck-page .ck-hl")
        assert marks, "the cited span is boxed on the page"
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", marks[0])
        frame = card.find_element(By.CSS_SELECTOR, ".ck-page")
        shot = Image.open(io.BytesIO(frame.screenshot_as_png)).convert("RGB")
        origin, scale = frame.rect, shot.width / frame.rect["width"]
        for mark in marks:
            r = mark.rect
            left, top = (r["x"] - origin["x"]) * scale, (r["y"] - origin["y"]) * scale
            inside = shot.crop((int(left) + 3, int(top) + 3, int(left + r["width"] * scale) - 3,
                                int(top + r["height"] * scale) - 3)).convert("L")
            assert inside.width > 10 and inside.getextrema()[0] < 110, "a highlight box over blank paper"
        d.save_screenshot(str(SHOTS / "source.png"))
        link = card.find_element(By.CSS_SELECTOR, "a.ck-dl")
        assert link.get_attribute("href").endswith("/file")
    except Exception as exc:
        d.save_screenshot(str(SHOTS / "failure.png"))
        tail = "\n".join(live_server["log"].read_text(errors="replace").splitlines()[-60:])
        raise AssertionError(f"{exc}\n--- server log (last 60 lines) ---\n{tail}") from exc
