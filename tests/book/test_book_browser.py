"""Every page of the built book in a real browser (headless Chromium), with the network cut off.

Chromium may only talk to the local server that serves the book (and read data: URLs); any
other request is aborted and fails the page's test. Each page must show no console error and no
failed request, render its math, load every image, and have working frame sliders; search must
find "multi-head". Every page of the Chinese edition (``zh/``) passes the same checks, shows its
Chinese text in a CJK font, and its search finds every page that uses 注意力, 掩码 or 多头; the
language switch leads to the same page in the other edition and back. Screenshots of three
chapters go to test-artifacts/.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO_ROOT, book_chapters

from course_lib.authoring import bookbuild

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.xdist_group("book")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOT_CHAPTERS = ("01_tensors", "05_attention", "08_multi_head")


def _page_names() -> list[str]:
    toc = bookbuild.partial_toc(book_chapters())
    names = bookbuild.toc_files(toc) + ["search", "genindex"]
    if len(book_chapters()) == len(bookbuild.CHAPTERS):  # the Chinese edition: full builds
        names += [f"zh/{name}" for name in names]
    return names


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium", pytrace=False)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            # Belt and braces: even a request that escaped the router could not resolve a host.
            args=["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--no-sandbox"],
        )
        yield browser
        browser.close()


class PageLog:
    """What went wrong while a page was open."""

    def __init__(self) -> None:
        self.console_errors: list[str] = []
        self.failed: list[str] = []
        self.blocked: list[str] = []


@pytest.fixture
def open_page(browser, book_server):
    contexts = []

    def _open(name: str, query: str = ""):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        contexts.append(context)
        log = PageLog()

        def route(r):
            url = r.request.url
            if url.startswith(book_server) or url.startswith("data:"):
                r.continue_()
            else:
                log.blocked.append(url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        page.on(
            "console",
            lambda msg: log.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        page.on("pageerror", lambda exc: log.console_errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda req: log.failed.append(f"{req.url} ({req.failure})"))
        page.on(
            "response",
            lambda resp: (
                log.failed.append(f"{resp.url} (HTTP {resp.status})")
                if resp.status >= 400
                else None
            ),
        )
        page.goto(f"{book_server}/{name}.html{query}", wait_until="load")
        return page, log

    yield _open
    for context in contexts:
        context.close()


_WAIT_FOR_MATH = """async () => {
  if (!window.MathJax) return 0;
  for (let i = 0; i < 200 && !(MathJax.startup && MathJax.startup.promise); i++)
    await new Promise(r => setTimeout(r, 50));
  await MathJax.startup.promise;
  return document.querySelectorAll('mjx-container').length;
}"""

_BROKEN_IMAGES = """async () => {
  const bad = [];
  for (const img of Array.from(document.images)) {
    img.loading = 'eager';
    try { await img.decode(); } catch (e) {}
    if (!(img.complete && img.naturalWidth > 0)) bad.push((img.getAttribute('src') || '').slice(0, 80));
  }
  return bad;
}"""

# Visible text outside code: raw TeX delimiters there mean the math was not rendered.
_PROSE_TEXT = """() => {
  const body = document.querySelector('main') || document.body;
  const clone = body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  return clone.innerText;
}"""


# Source code on the page (code cells and included course_lib code, not outputs) must fit its
# block: a horizontal scroll bar hides the end of a line.
_OVERFLOWING_CODE = """() => Array.from(document.querySelectorAll(
    '.cell_input pre, div[class*="highlight-python"] pre, div[class*="highlight-ipython"] pre'))
  .filter(pre => !pre.closest('.cell_output') && pre.offsetParent !== null
                 && pre.scrollWidth > pre.clientWidth + 1)
  .map(pre => pre.textContent.split('\\n').reduce((a, b) => a.length >= b.length ? a : b)
                 .trim().slice(0, 70))"""


@pytest.mark.parametrize("name", _page_names())
def test_page_renders_offline(open_page, name):
    page, log = open_page(name)
    n_math = page.locator(".math").count()
    rendered = page.evaluate(_WAIT_FOR_MATH)
    if n_math:
        assert rendered >= n_math, f"{name}: {n_math} formulas but {rendered} rendered by MathJax"
    text = page.evaluate(_PROSE_TEXT)
    for raw in ("$$", "\\[", "\\("):
        assert raw not in text, f"{name}: raw {raw!r} in the page text: math was not rendered"
    assert page.evaluate(_BROKEN_IMAGES) == [], f"{name}: images that did not load"
    sliders = page.locator(".frame-slider")
    for i in range(sliders.count()):
        slider = sliders.nth(i)
        slider.scroll_into_view_if_needed()
        img = slider.locator("img.fs-frame")
        caption = slider.locator(".fs-value")
        before_src, before_caption = img.get_attribute("src"), caption.inner_text()
        slider.locator("input.fs-range").press("End")
        assert img.get_attribute("src") != before_src, (
            f"{name}: slider {i} does not change the figure"
        )
        assert caption.inner_text() != before_caption, f"{name}: slider {i} caption did not change"
    if re.fullmatch(r"(zh/)?\d\d_\w+", name):  # chapters keep code to the code column
        overflowing = page.evaluate(_OVERFLOWING_CODE)
        assert overflowing == [], f"{name}: code lines wider than their block: {overflowing}"
    if name.startswith("zh/") and name not in ("zh/search", "zh/genindex"):
        fonts = _fonts_of_first_chinese_paragraph(page)
        assert any("CJK" in f or f in _CJK_FALLBACKS for f in fonts), (
            f"{name}: Chinese text drawn with {fonts}, not a CJK font"
        )
    page.wait_for_timeout(100)  # let late console messages arrive
    assert log.blocked == [], f"{name} tried to reach the network: {log.blocked}"
    assert log.failed == [], f"{name}: failed requests {log.failed}"
    assert log.console_errors == [], f"{name}: console errors {log.console_errors}"


_CJK_FALLBACKS = {
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Droid Sans Fallback",
    "AR PL UMing CN",
}


def _fonts_of_first_chinese_paragraph(page) -> list[str]:
    """The font families Chromium used to draw the first paragraph with Chinese text."""
    found = page.evaluate(
        """() => {
      const p = Array.from(document.querySelectorAll('main p, article p'))
        .find(e => /[\u4e00-\u9fff]/.test(e.textContent));
      if (!p) return false;
      p.id = 'cjk-probe';
      return true;
    }"""
    )
    assert found, "no paragraph with Chinese text"
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#cjk-probe"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    return [f["familyName"] for f in fonts if f.get("glyphCount", 0) > 0]


def _zh_pages_with(word: str) -> set[str]:
    from bs4 import BeautifulSoup

    zh = bookbuild.HTML_DIR / "zh"
    pages = set()
    for name in bookbuild.toc_files(bookbuild.partial_toc(book_chapters())):
        soup = BeautifulSoup((zh / f"{name}.html").read_text(encoding="utf-8"), "html.parser")
        article = soup.select_one("article") or soup.body
        for junk in article.select("pre, code, .math, script, style"):
            junk.decompose()
        if word in article.get_text():
            pages.add(name)
    return pages


def _search_results(page) -> list[str]:
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=20_000)
    # Sphinx lists the results one by one; the title says "Search Results" when all are in.
    page.wait_for_function(
        "() => Search.title && Search.title.innerText === Documentation.gettext('Search Results')",
        timeout=30_000,
    )
    return [results.nth(i).locator("a").first.get_attribute("href") for i in range(results.count())]


@pytest.mark.parametrize("word", ["注意力", "掩码", "多头"])
def test_chinese_search_finds_every_page_with_the_word(open_page, word):
    if len(book_chapters()) != len(bookbuild.CHAPTERS):
        pytest.skip("the Chinese edition is built with the whole book only")
    page, log = open_page("zh/search", f"?q={word}")
    found = {h.split("?")[0].split("#")[0].removesuffix(".html") for h in _search_results(page)}
    expected = _zh_pages_with(word)
    assert len(expected) >= 3
    assert expected <= found, f"searching {word} misses {sorted(expected - found)}"
    assert log.blocked == [] and log.failed == [] and log.console_errors == []


def test_language_switch_round_trip(open_page, book_server):
    if len(book_chapters()) != len(bookbuild.CHAPTERS):
        pytest.skip("the Chinese edition is built with the whole book only")
    page, log = open_page("appendix/glossary")
    page.locator(".course-language-switch a").click()
    page.wait_for_load_state("load")
    assert page.url == f"{book_server}/zh/appendix/glossary.html"
    assert "术语表" in page.locator("h1").first.inner_text()
    page.locator(".course-language-switch a").click()
    page.wait_for_load_state("load")
    assert page.url == f"{book_server}/appendix/glossary.html"
    # An English glossary entry leads to the same entry in the Chinese edition.
    page.locator("#term-attention a.course-zh-link").click()
    page.wait_for_load_state("load")
    assert page.url == f"{book_server}/zh/appendix/glossary.html#term-attention"
    assert "注意力" in page.locator("#term-attention").inner_text()
    assert log.console_errors == [] and log.blocked == []


def test_search_finds_multi_head(open_page):
    page, log = open_page("search", "?q=multi-head")
    results = page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=20_000)
    links = [
        results.nth(i).locator("a").first.get_attribute("href") for i in range(results.count())
    ]
    assert links, "search for multi-head found nothing"
    if "08_multi_head" in book_chapters():
        assert any("08_multi_head" in h for h in links), f"chapter 8 not among results {links}"
    assert log.blocked == [] and log.failed == [] and log.console_errors == []


def test_screenshots_of_three_chapters(open_page):
    ARTIFACTS.mkdir(exist_ok=True)
    chosen = [c for c in SCREENSHOT_CHAPTERS if c in book_chapters()]
    chosen += [c for c in book_chapters() if c not in chosen][: 3 - len(chosen)]
    for cid in chosen:
        page, _ = open_page(cid)
        page.evaluate(_WAIT_FOR_MATH)
        target = ARTIFACTS / f"book-{cid}.png"
        page.screenshot(path=str(target), full_page=True)
        assert target.stat().st_size > 10_000, f"{target} looks empty"
