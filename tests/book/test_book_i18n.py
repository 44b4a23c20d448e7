"""The Chinese edition: catalogues that cannot drift, and the built pages of both editions.

The drift check regenerates the English message templates and compares them with the
catalogues in ``book/locale``; the built-page tests read ``_build/html/zh`` (built by the
``book_html`` fixture with the English edition). The browser checks of the Chinese pages are in
``test_book_browser.py``, beside the English ones.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import polib
import pytest
from bs4 import BeautifulSoup
from conftest import book_chapters

from course_lib.authoring import bookbuild, i18n

CJK = re.compile(r"[\u3400-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
SEARCH_WORDS = ("注意力", "掩码", "多头")


# ---------------------------------------------------------------------------------------------
# The drift check.
# ---------------------------------------------------------------------------------------------


def _catalogue(entries: list[tuple[str, str, bool]]) -> polib.POFile:
    po = polib.POFile()
    for msgid, msgstr, fuzzy in entries:
        po.append(polib.POEntry(msgid=msgid, msgstr=msgstr, flags=["fuzzy"] if fuzzy else []))
    return po


def test_compare_catalogue_reports_each_kind_of_drift():
    english = [
        "Attention weights",
        "The score is $q \\cdot k$ for `Q @ K.T`, see {ref}`sec-mask` and [PyTorch](https://pytorch.org).",
        "New paragraph",
    ]
    good = _catalogue(
        [
            ("Attention weights", "注意力权重", False),
            (
                english[1],
                "分数是 $q \\cdot k$，即 `Q @ K.T`，见 {ref}`sec-mask` 和 [PyTorch](https://pytorch.org)。",
                False,
            ),
            ("New paragraph", "新段落", False),
        ]
    )
    assert i18n.compare_catalogue("p", english, good) == []

    bad = _catalogue(
        [
            ("Attention weights", "", False),  # untranslated
            (english[1], "分数是 $qk$，即 `Q @ K.T`，见 {ref}`sec-mask` 和 PyTorch。", False),
            ("Old paragraph", "旧段落", True),  # fuzzy and no longer in the English page
        ]
    )
    problems = "\n".join(i18n.compare_catalogue("p", english, bad))
    assert "stale catalogue (1 English message(s) not in it, 1 no longer" in problems
    assert "untranslated: 'Attention weights'" in problems
    assert "fuzzy" in problems
    assert "formula differs" in problems
    assert "link target differs" in problems
    assert "code span differs" not in problems


@pytest.mark.slow
def test_catalogues_are_complete_and_current():
    """Every page's catalogue holds exactly the English messages, all translated, none fuzzy."""
    problems = i18n.catalogue_problems()
    assert not problems, (
        f"{len(problems)} catalogue problem(s); run `make translations` and translate:\n"
        + "\n".join(problems[:40])
    )


# ---------------------------------------------------------------------------------------------
# The built editions.
# ---------------------------------------------------------------------------------------------


def _pages() -> list[str]:
    return bookbuild.toc_files(bookbuild.partial_toc(book_chapters()))


@pytest.fixture(scope="module")
def zh_html(book_html: Path) -> Path:
    if len(book_chapters()) != len(bookbuild.CHAPTERS):
        pytest.skip("the Chinese edition is built with the whole book only (COURSE_BOOK_ONLY set)")
    return book_html / "zh"


def _soup(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def _prose_blocks(soup: BeautifulSoup) -> list[str]:
    """The text of the article's paragraphs, list items, headings and table cells, without code,
    math, outputs and the language switch."""
    article = soup.select_one("article") or soup.body
    for junk in article.select(
        "pre, code, .math, .highlight, .cell_output, .output, script, style, "
        ".course-language-switch, .headerlink, .course-en-link, .course-zh-link, .course-generated"
    ):
        junk.decompose()
    blocks = []
    for el in article.select("p, li, h1, h2, h3, h4, td, th, dt, dd, figcaption"):
        if el.find(["p", "li", "ul", "ol", "table"]):
            continue  # only the innermost blocks
        text = " ".join(el.get_text(" ").split())
        if text:
            blocks.append(text)
    return blocks


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_chinese_build_reexecutes_nothing_and_has_every_page(zh_html):
    stamp = json.loads((zh_html / ".bookbuild-stamp.json").read_text())
    assert stamp["executed"] == 0, "the Chinese build ran notebooks instead of reading the cache"
    missing = [p for p in _pages() if not (zh_html / f"{p}.html").is_file()]
    assert missing == [], f"Chinese pages missing: {missing}"
    for page in _pages():
        soup = _soup(zh_html / f"{page}.html")
        assert soup.html.get("lang", "").lower().startswith("zh"), f"{page}: html lang is not zh"
        english = _soup(zh_html.parent / f"{page}.html")
        # The same code and outputs: the code cells of both editions are identical.
        zh_code = [c.get_text() for c in soup.select("div.cell pre")]
        en_code = [c.get_text() for c in english.select("div.cell pre")]
        assert zh_code == en_code, f"{page}: code or outputs differ between the editions"


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_no_chinese_page_keeps_an_english_paragraph(zh_html):
    """A prose block of several English words and no Chinese character is untranslated."""
    offenders = {}
    for page in _pages():
        blocks = _prose_blocks(_soup(zh_html / f"{page}.html"))
        english = [b for b in blocks if len(LATIN_WORD.findall(b)) >= 6 and not CJK.search(b)]
        cjk = sum(len(CJK.findall(b)) for b in blocks)
        latin = sum(len("".join(LATIN_WORD.findall(b))) for b in blocks)
        # The reference list keeps titles, authors and venues in their own language.
        if english or (cjk < latin and page != "appendix/references"):
            offenders[page] = (round(cjk / max(cjk + latin, 1), 2), english[:3])
    assert offenders == {}, f"pages with English prose (CJK share, examples): {offenders}"


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_language_switch_leads_to_the_same_page(zh_html):
    english_html = zh_html.parent
    for page in _pages():
        for root, other in ((english_html, zh_html), (zh_html, english_html)):
            here = root / f"{page}.html"
            switch = _soup(here).select_one(".course-language-switch a")
            assert switch is not None, f"{here}: no language switch"
            target = (here.parent / switch["href"]).resolve()
            assert target == (other / f"{page}.html").resolve(), f"{here} switches to {target}"


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_english_glossary_entries_link_to_the_chinese_ones(zh_html):
    en = _soup(zh_html.parent / "appendix" / "glossary.html")
    zh = _soup(zh_html / "appendix" / "glossary.html")
    terms = i18n.glossary_terms()
    assert len(terms) > 150
    zh_ids = {li.get("id") for li in zh.select("li[id]")}
    for term in terms:
        item = en.find("li", id=term.slug)
        assert item is not None, f"English glossary: no entry with id {term.slug}"
        assert term.term.split(" (")[0] in item.get_text(), f"{term.slug} is on another entry"
        link = item.select_one("a.course-zh-link")
        assert link is not None and link["href"] == f"../zh/appendix/glossary.html#{term.slug}"
        assert term.slug in zh_ids, f"Chinese glossary: no entry with id {term.slug}"
    # The Chinese entry with that id is the same term: its Chinese name is on it.
    for term in terms[:40]:
        assert term.zh.split("（")[0] in zh.find("li", id=term.slug).get_text()


def _paragraph_prose(paragraph) -> str:
    """A paragraph's words, without code, math and links (a term there is not glossed)."""
    clone = BeautifulSoup(str(paragraph), "html.parser")
    for junk in clone.select("code, .math, a"):
        junk.decompose()
    return " ".join(clone.get_text().split())


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_first_use_of_a_key_term_carries_its_chinese_name(book_html):
    total = 0
    for chapter in book_chapters():
        soup = _soup(book_html / f"{chapter}.html")
        glosses = soup.select("a.course-zh-gloss")
        terms = {t.term: t for t in i18n.glossary_terms() if t.chapter == int(chapter[:2])}
        assert len(glosses) >= len(terms) // 2, f"{chapter}: {len(glosses)} glosses"
        seen = set()
        for gloss in glosses:
            name = gloss["title"].split(": ")[0]
            term = terms[name]
            assert name not in seen, f"{chapter}: {name} glossed twice"
            seen.add(name)
            assert gloss.get_text() == f"({term.zh})"
            assert gloss["href"] == f"appendix/glossary.html#{term.slug}"
            paragraph = gloss.find_parent("p")
            assert paragraph.find_parent(class_="key-terms") is None, f"{name}: in Key terms"
            # The gloss follows the term itself ...
            marker = soup.new_string("\x00")
            gloss.insert_before(marker)
            before = _paragraph_prose(paragraph).split("\x00")[0]
            marker.extract()
            assert term.pattern.search(before[-len(name) - 3 :]), (chapter, name, before[-60:])
            # ... at its first use: no earlier paragraph of the prose uses it.
            article = paragraph.find_parent("article")
            for earlier in paragraph.find_all_previous("p"):
                if earlier.find_parent("article") is not article:
                    break  # the navigation before the page's text
                if earlier.find_parent("div", class_="cell") is None:
                    assert not term.pattern.search(_paragraph_prose(earlier)), (
                        f"{chapter}: {name!r} is used before its gloss: "
                        f"{_paragraph_prose(earlier)[:80]!r}"
                    )
        total += len(glosses)
    assert total > 100


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_chinese_search_index_covers_every_page_with_the_words(zh_html):
    text = (zh_html / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    docnames = index["docnames"]
    for word in SEARCH_WORDS:
        pages = {
            p for p in _pages() if word in " ".join(_prose_blocks(_soup(zh_html / f"{p}.html")))
        }
        assert len(pages) >= 3, f"{word}: only {sorted(pages)} contain it"
        hits = index["terms"].get(word, [])
        hits = {docnames[i] for i in ([hits] if isinstance(hits, int) else hits)}
        titles = index.get("titleterms", {}).get(word, [])
        hits |= {docnames[i] for i in ([titles] if isinstance(titles, int) else titles)}
        assert pages <= hits, f"searching {word} misses {sorted(pages - hits)}"


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_chinese_sidebar_headings_are_translated(zh_html):
    """The table of contents' part captions come from ``_toc.po``, not the English ``_toc.yml``."""
    english = i18n.toc_captions()
    for page in ("intro", "05_attention", "appendix/glossary"):
        shown = [
            " ".join(c.get_text().split())
            for c in _soup(zh_html / f"{page}.html").select("nav p.caption")
        ]
        assert len(shown) == len(english), f"{page}: sidebar captions {shown}"
        assert all(CJK.search(c) for c in shown), f"{page}: untranslated captions {shown}"
        assert not set(shown) & set(english)
