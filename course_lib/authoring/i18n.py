"""The Chinese edition (中文版) of the book: one set of sources, two languages of prose.

Sphinx's own internationalisation, the road the Python and Django docs take:

1. **extract** -- Sphinx's gettext builder writes one template per page (``_build/gettext/
   <page>.pot``): every paragraph, heading, list item and table cell of the English MyST
   source is one message. Code cells, their outputs and the figures are not messages: both
   editions show the same ones.
2. **update** -- ``sphinx-intl`` merges the templates into the catalogues kept in the
   repository, ``book/locale/zh_CN/LC_MESSAGES/<page>.po``: a new English paragraph becomes
   an untranslated entry, an edited one a fuzzy entry (the old translation kept as a hint).
   ``make translations`` runs 1 and 2 and lists what needs translating.
3. **build** -- the same sources built with ``language = zh_CN`` into ``_build/html/zh/``.
   It reads the execution cache that the English build filled, so it re-executes nothing:
   the Chinese reader sees the very outputs the English reader sees.

:func:`catalogue_problems` is the drift check (``tests/test_book_i18n.py``): it fails while an
entry is untranslated or fuzzy, while the catalogues are stale against the English sources, or
while a translation lost a formula, a code span, a role or a link of its English message.

This module is also a Sphinx extension (listed in ``_config.yml``), active in both editions:

- a language switch on every page that leads to the same page in the other edition;
- an anchor on every glossary entry (``#term-<slug>``, the same in both editions), and in the
  English glossary a link from each entry to the Chinese one;
- in the English chapters, the first use of each of the chapter's key terms followed by its
  Chinese name, linked to the glossary entry;
- text that a benchmark wrote (an ``{include}`` of ``benchmarks/*.md``) is output, like a code
  cell's: never a message to translate.

Commands: ``python -m course_lib.authoring.i18n translations`` (what ``make translations``
runs), ``check`` (the drift check, exit 1 on a problem), ``build`` (the Chinese edition only),
``stats`` (words per page in both languages).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from course_lib.authoring.bookbuild import (
    BOOK_DIR,
    BUILD_DIR,
    CACHE_DIR,
    CONFIG_PATH,
    REPO_ROOT,
    TOC_PATH,
)

GETTEXT_DIR = BUILD_DIR / "gettext"
LOCALE_DIR = BOOK_DIR / "locale"
LANGUAGE = "zh_CN"
CATALOGUE_DIR = LOCALE_DIR / LANGUAGE / "LC_MESSAGES"
ZH_HTML_DIR = BUILD_DIR / "html" / "zh"
ZH_STAMP_PATH = ZH_HTML_DIR / ".bookbuild-stamp.json"
BUILT_LOCALE_DIR = BUILD_DIR / ".locale-zh"
TOC_MESSAGES = "_toc"  # the catalogue of the table of contents' part captions
GLOSSARY_SOURCE = BOOK_DIR / "appendix" / "glossary.md"
GLOSSARY_PAGE = "appendix/glossary"
ZH_TITLE = "Transformer 基础"

# What a translation must keep from its English message, compared as multisets.
_MARKUP = {
    "formula": re.compile(r"(?<!\\)\$\$?([^$]+?)\$\$?"),
    "code span": re.compile(r"(?<!`)`([^`]+)`(?!`)"),
    "role": re.compile(r"\{[a-z][a-z:-]*\}"),
    "link target": re.compile(r"\]\(([^)]*)\)"),
    "footnote": re.compile(r"\[\^[^\]]+\]"),
}
_CJK = re.compile(r"[\u3400-\u9fff]")


class TranslationError(RuntimeError):
    """The Chinese edition cannot be built or its catalogues cannot be updated."""


# ---------------------------------------------------------------------------------------------
# Running Sphinx the way jupyter-book does, with our own builder, output and doctree folders.
# ---------------------------------------------------------------------------------------------

_SPHINX = """\
import json, sys
from jupyter_book.sphinx import build_sphinx
a = json.loads(sys.argv[1])
result = build_sphinx(a["src"], a["out"], noconfig=True, path_config=a["config"],
    confoverrides=a["overrides"], doctreedir=a["doctrees"], builder=a["builder"],
    warningiserror=a["strict"], keep_going=True, force_all=a["force_all"],
    freshenv=a["fresh"])
if isinstance(result, Exception):
    print(f"Sphinx failed: {result!r}", file=sys.stderr)
    sys.exit(1)
sys.exit(result or 0)
"""


@dataclass
class SphinxRun:
    returncode: int
    output: str
    executed: int  # notebooks that myst-nb executed (0 when everything came from the cache)
    seconds: float


def run_sphinx(
    builder: str,
    outdir: Path,
    doctrees: Path,
    overrides: dict,
    *,
    strict: bool = True,
    quiet: bool = True,
    force_all: bool = False,
    fresh: bool = False,
) -> SphinxRun:
    """Build ``book/`` with jupyter-book's configuration plus ``overrides``, in a subprocess."""
    args = {
        "src": str(BOOK_DIR),
        "out": str(outdir),
        "config": str(CONFIG_PATH),
        "doctrees": str(doctrees),
        "builder": builder,
        "strict": strict,
        "force_all": force_all,
        "fresh": fresh,
        "overrides": {
            "external_toc_path": TOC_PATH.as_posix(),
            "latex_individualpages": False,
            **overrides,
        },
    }
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _SPHINX, json.dumps(args)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line)
        if not quiet:
            print(line, end="")
    proc.wait()
    output = "".join(lines)
    executed = len(re.findall(r"Executing notebook using", output))
    return SphinxRun(proc.returncode, output, executed, time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------
# Catalogues: extract, update, check.
# ---------------------------------------------------------------------------------------------

GETTEXT_OVERRIDES = {
    # One catalogue per page, no source line numbers (they would churn on every edit).
    "gettext_compact": False,
    "gettext_location": False,
    "gettext_uuid": False,
    # The messages are the Markdown of the pages: nothing needs to run to extract them.
    "nb_execution_mode": "off",
    "suppress_warnings": ["mystnb.glue"],
}


def extract(outdir: Path = GETTEXT_DIR, *, quiet: bool = True) -> Path:
    """Write the message templates of every page to ``outdir`` (``<page>.pot``)."""
    # Every page read afresh: a change to this extension changes the messages of pages
    # whose source did not change.
    run = run_sphinx(
        "gettext",
        outdir,
        BUILD_DIR / ".doctrees-gettext",
        GETTEXT_OVERRIDES,
        quiet=quiet,
        fresh=True,
    )
    if run.returncode != 0:
        raise TranslationError(
            "extracting the English messages failed (Sphinx's gettext builder):\n"
            + "\n".join(run.output.splitlines()[-30:])
        )
    _write_toc_template(outdir / f"{TOC_MESSAGES}.pot")
    return outdir


def toc_captions(toc_path: Path = TOC_PATH) -> list[str]:
    """The part captions of the table of contents (the sidebar's headings), in order."""
    import yaml

    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    return [part["caption"] for part in toc.get("parts", []) if part.get("caption")]


def _write_toc_template(path: Path) -> None:
    """Sphinx does not extract the captions of ``_toc.yml``: they get a template of their own."""
    import polib

    pot = polib.POFile()
    pot.metadata = {"Content-Type": "text/plain; charset=UTF-8"}
    for caption in toc_captions():
        pot.append(polib.POEntry(msgid=caption, msgstr=""))
    pot.save(str(path))


def _translated_captions() -> dict[str, str]:
    import polib

    path = CATALOGUE_DIR / f"{TOC_MESSAGES}.po"
    if not path.is_file():
        return {}
    return {e.msgid: e.msgstr for e in polib.pofile(str(path)) if e.msgstr and not e.obsolete}


def _templates(pot_dir: Path) -> dict[str, Path]:
    return {
        p.relative_to(pot_dir).with_suffix("").as_posix(): p
        for p in sorted(pot_dir.rglob("*.pot"))
        if "_static" not in p.parts
    }


def _catalogues() -> dict[str, Path]:
    return {
        p.relative_to(CATALOGUE_DIR).with_suffix("").as_posix(): p
        for p in sorted(CATALOGUE_DIR.rglob("*.po"))
    }


def markup_differences(msgid: str, msgstr: str) -> list[str]:
    """What the translation lost or added: formulas, code spans, roles, link targets, footnotes."""
    found = []
    for name, pattern in _MARKUP.items():
        a = sorted(m.strip() for m in pattern.findall(msgid))
        b = sorted(m.strip() for m in pattern.findall(msgstr))
        if a != b:
            missing = [x for x in a if x not in b]
            extra = [x for x in b if x not in a]
            found.append(
                f"{name} differs (English has {missing or '-'}, Chinese has {extra or '-'})"
            )
    return found


def compare_catalogue(page: str, template_ids: Iterable[str], catalogue) -> list[str]:
    """Problems of one page's catalogue (a ``polib.POFile``) against its template's messages."""
    problems = []
    live = [e for e in catalogue if not e.obsolete]
    have = {e.msgid for e in live}
    want = set(template_ids)
    new = [m for m in want if m not in have]
    gone = [m for m in have if m not in want]
    if new or gone:
        problems.append(
            f"{page}: stale catalogue ({len(new)} English message(s) not in it, {len(gone)} no "
            "longer in the English page): run `make translations`"
        )
    for e in live:
        head = " ".join(e.msgid.split())[:70]
        if "fuzzy" in e.flags:
            problems.append(f"{page}: fuzzy (English changed, check the translation): {head!r}")
        elif not e.msgstr.strip():
            problems.append(f"{page}: untranslated: {head!r}")
        else:
            for diff in markup_differences(e.msgid, e.msgstr):
                problems.append(f"{page}: {diff}: {head!r}")
    return problems


def catalogue_problems(pot_dir: Path | None = None) -> list[str]:
    """Every reason the Chinese catalogues do not match the English sources (empty: they do)."""
    import polib

    if pot_dir is None:
        pot_dir = extract(Path(tempfile.mkdtemp(prefix="course-gettext-")))
    templates = _templates(pot_dir)
    catalogues = _catalogues()
    problems = [
        f"{page}: no catalogue {CATALOGUE_DIR.relative_to(REPO_ROOT)}/{page}.po: run "
        "`make translations`"
        for page in templates
        if page not in catalogues
    ]
    problems += [
        f"{page}: catalogue of a page the book no longer has: delete "
        f"{CATALOGUE_DIR.relative_to(REPO_ROOT)}/{page}.po"
        for page in catalogues
        if page not in templates
    ]
    for page, pot in templates.items():
        if page in catalogues:
            ids = [e.msgid for e in polib.pofile(str(pot))]
            problems += compare_catalogue(page, ids, polib.pofile(str(catalogues[page])))
    return problems


def update_catalogues(*, quiet: bool = False) -> list[str]:
    """``make translations``: extract, merge into the catalogues, return what needs work."""
    from sphinx_intl import basic

    pot_dir = extract(quiet=True)
    with contextlib.redirect_stdout(io.StringIO()):  # one "Not Changed: ..." line per page
        basic.update(str(LOCALE_DIR), str(pot_dir), (LANGUAGE,), line_width=100)
    # Messages the English pages no longer have would only grow the files: drop them. Babel
    # flags "85 % of" as a Python format string, which a translation cannot match: the
    # messages are Markdown, so no entry is a format string.
    import polib

    for path in _catalogues().values():
        po = polib.pofile(str(path), wrapwidth=100)
        changed = False
        for e in po.obsolete_entries():
            po.remove(e)
            changed = True
        for e in po:
            kept = [f for f in e.flags if not f.endswith("-format")]
            if kept != e.flags:
                e.flags = kept
                changed = True
        if changed:
            po.save()
    for page in _catalogues():
        if page not in _templates(pot_dir):
            (CATALOGUE_DIR / f"{page}.po").unlink()
            if not quiet:
                print(f"deleted {page}.po: the book no longer has that page")
    return catalogue_problems(pot_dir)


# ---------------------------------------------------------------------------------------------
# The Chinese build.
# ---------------------------------------------------------------------------------------------

_REDIRECT = (
    '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
    '<meta http-equiv="Refresh" content="0; url={target}"><title>{title}</title></head>'
    '<body><a href="{target}">{title}</a></body></html>\n'
)


_GLUE_ROLE = re.compile(r"\{glue(?::[a-z]+)?\}`(?P<body>[^`]+)`")


_NUMBERED = re.compile(r"^(\d+)\.(?= )")


def _page_glue(match: re.Match, page_file: str) -> str:
    """``{glue:text}`key:fmt``` as ``{glue:text}`page.md::key:fmt``` (``:s`` if no format:
    myst-nb reads the text after the last colon as the format)."""
    role, body = match.group(0).split("`")[0], match["body"]
    if "::" in body:
        return match.group(0)
    if ":" not in body:
        body += ":s"
    return f"{role}`{page_file}::{body}`"


def build_catalogues(target: Path = BUILT_LOCALE_DIR) -> Path:
    """The catalogues as the Chinese build reads them: copied out of the repository (Sphinx
    compiles ``.mo`` files beside them), with each ``{glue:text}`key``` of a translation
    written as ``{glue:text}`<page file>::key:s``` -- myst-nb resolves a translated paragraph
    apart from its page, so the value must be looked up by page, not in the paragraph."""
    import polib

    if target.exists():
        shutil.rmtree(target)
    for page, path in _catalogues().items():
        source = next(
            (
                BOOK_DIR / f"{page}{suffix}"
                for suffix in (".md", ".ipynb")
                if (BOOK_DIR / f"{page}{suffix}").is_file()
            ),
            None,
        )
        po = polib.pofile(str(path))
        if source is not None:
            for e in po:
                e.msgstr = _GLUE_ROLE.sub(lambda m, name=source.name: _page_glue(m, name), e.msgstr)
        for e in po:
            # A numbered heading ("# 1. Tensors") is a message "1. Tensors"; parsed on its own,
            # its translation "1. 张量" would be a list, and Sphinx would drop it.
            if _NUMBERED.match(e.msgid) and _NUMBERED.match(e.msgstr):
                e.msgstr = _NUMBERED.sub(r"\g<1>\\.", e.msgstr, count=1)
        out = target / LANGUAGE / "LC_MESSAGES" / f"{page}.po"
        out.parent.mkdir(parents=True, exist_ok=True)
        po.save(str(out))
    return target


def zh_overrides() -> dict:
    return {
        "language": LANGUAGE,
        "locale_dirs": [str(BUILT_LOCALE_DIR)],
        "gettext_compact": False,
        "html_search_language": "zh",
        "html_title": ZH_TITLE,
        # The cache the English build filled: the Chinese build runs no code of its own.
        "nb_execution_cache_path": str(CACHE_DIR),
    }


def zh_digest(english_digest: str) -> str:
    h = hashlib.sha256(english_digest.encode())
    for path in sorted(CATALOGUE_DIR.rglob("*.po")):
        h.update(path.relative_to(LOCALE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()


def build_zh(english_digest: str, *, force: bool = False, quiet: bool = False) -> Path:
    """Build the Chinese edition into ``_build/html/zh`` (unless up to date); return its index."""
    from course_lib.authoring.bookbuild import extensions_digest

    index = ZH_HTML_DIR / "index.html"
    digest = zh_digest(english_digest)
    try:
        stamp = json.loads(ZH_STAMP_PATH.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        stamp = {}
    if not force and stamp.get("digest") == digest and index.is_file():
        if not quiet:
            print(f"The Chinese edition is up to date: {index}")
        return index
    ZH_STAMP_PATH.unlink(missing_ok=True)
    build_catalogues()
    run = run_sphinx(
        "html",
        ZH_HTML_DIR,
        BUILD_DIR / ".doctrees-zh",
        zh_overrides(),
        quiet=quiet,
        # Sphinx re-writes only changed pages; our extensions' code changes every page.
        force_all=force or stamp.get("extensions") != extensions_digest(),
    )
    if run.returncode != 0:
        tail = "\n".join(run.output.splitlines()[-40:])
        raise TranslationError(
            f"the Chinese edition failed to build (exit {run.returncode}); warnings count as "
            f"errors. Run `make translations` after an English edit.\n{tail}"
        )
    index.write_text(_REDIRECT.format(target="intro.html", title=ZH_TITLE), encoding="utf-8")
    ZH_STAMP_PATH.write_text(
        json.dumps(
            {
                "digest": digest,
                "extensions": extensions_digest(),
                "seconds": run.seconds,
                "executed": run.executed,
            }
        )
    )
    if not quiet:
        print(f"The Chinese edition is at {index} ({run.seconds:.0f} s, executed {run.executed})")
    return index


# ---------------------------------------------------------------------------------------------
# Word counts (for the notes on the translation).
# ---------------------------------------------------------------------------------------------


def word_counts() -> list[tuple[str, int, int]]:
    """(page, English words, Chinese characters) of every catalogue's prose."""
    import polib

    rows = []
    for page, path in _catalogues().items():
        en = zh = 0
        for e in polib.pofile(str(path)):
            if e.obsolete:
                continue
            en += len(re.findall(r"[A-Za-z]+(?:['-][A-Za-z]+)*", _strip_markup(e.msgid)))
            zh += len(_CJK.findall(e.msgstr))
        rows.append((page, en, zh))
    return rows


def _strip_markup(text: str) -> str:
    for pattern in (_MARKUP["formula"], _MARKUP["code span"], _MARKUP["link target"]):
        text = pattern.sub(" ", text)
    return text


# ---------------------------------------------------------------------------------------------
# Sphinx extension: language switch, glossary anchors and links, first-use glosses.
# ---------------------------------------------------------------------------------------------

_GLOSSARY_LINE = re.compile(
    r"^- \*\*(?P<term>.+?)\*\* — (?P<zh>[^:]+?): .*\(ch\. (?P<chapter>\d+)\)\s*$", re.M
)


@dataclass(frozen=True)
class Term:
    term: str  # as in the glossary, e.g. "byte-pair encoding (BPE)"
    zh: str
    chapter: int

    @property
    def slug(self) -> str:
        return "term-" + re.sub(r"[^a-z0-9]+", "-", self.term.lower()).strip("-")

    @property
    def pattern(self) -> re.Pattern:
        """The term in running English text: without its parenthesis, any case, plural too."""
        base = re.sub(r"\s*\([^)]*\)", "", self.term).strip()
        words = r"\s+".join(re.escape(w) for w in base.split())
        return re.compile(r"(?<![\w-])" + words + r"(?:s|es)?(?![\w-])", re.I)


@cache
def glossary_terms() -> tuple[Term, ...]:
    """The glossary's entries, in page order (``book/appendix/glossary.md``)."""
    text = GLOSSARY_SOURCE.read_text(encoding="utf-8")
    return tuple(
        Term(m["term"], m["zh"].strip(), int(m["chapter"])) for m in _GLOSSARY_LINE.finditer(text)
    )


def edition(app) -> str:
    return "zh" if str(app.config.language or "en").startswith("zh") else "en"


def other_edition_url(pagename: str, current: str) -> str:
    """The same page in the other edition, relative to ``pagename``'s own URL."""
    up = "../" * pagename.count("/")
    return f"{up}zh/{pagename}.html" if current == "en" else f"{up}../{pagename}.html"


def _language_switch(app, pagename: str, templatename, context: dict, doctree) -> None:
    current = edition(app)
    href = other_edition_url(pagename, current)
    lang, label = ("zh-CN", "中文版") if current == "en" else ("en", "English edition")
    switch = (
        f'<p class="course-language-switch" style="text-align:right;margin:0 0 .5rem">'
        f'<a href="{href}" hreflang="{lang}" lang="{lang}" rel="alternate">{label}</a></p>\n'
    )
    if "body" in context:
        context["body"] = switch + context["body"]
    context["metatags"] = (
        context.get("metatags", "") + f'\n<link rel="alternate" hreflang="{lang}" href="{href}" />'
    )


def _raw_html(text: str):
    from docutils import nodes

    return nodes.raw("", text, format="html")


def _glossary_anchors(app, doctree, docname: str) -> None:
    """Give the glossary's entries stable ids, and link each English entry to the Chinese one."""
    if docname != GLOSSARY_PAGE:
        return
    from docutils import nodes
    from sphinx.util import logging

    items = [i for i in doctree.findall(nodes.list_item) if isinstance(i.parent, nodes.bullet_list)]
    terms = glossary_terms()
    if len(items) != len(terms):
        logging.getLogger(__name__).warning(
            f"the glossary page has {len(items)} entries but {GLOSSARY_SOURCE.name} has "
            f"{len(terms)}: keep one list item per entry in the translation"
        )
        return
    current = edition(app)
    for item, term in zip(items, terms, strict=True):
        item["ids"].append(term.slug)
        paragraph = next(iter(item.findall(nodes.paragraph)), None)
        if paragraph is None:
            continue
        if current == "en":
            link = (
                f' <a class="course-zh-link" href="../zh/{GLOSSARY_PAGE}.html#{term.slug}" '
                f'hreflang="zh-CN" lang="zh-CN" title="{html.escape(term.zh)}">中文</a>'
            )
        else:
            link = (
                f' <a class="course-en-link" href="../../{GLOSSARY_PAGE}.html#{term.slug}" '
                f'hreflang="en" lang="en">English</a>'
            )
        paragraph += _raw_html(link)


_NO_GLOSS_INSIDE = ("title", "literal", "literal_block", "math", "math_block", "reference", "raw")
_INLINE_MARKUP = ("strong", "emphasis", "inline")


def _gloss_allowed(paragraph) -> bool:
    """Prose of the page: not a code cell, not the Key terms box (it has the Chinese already)."""
    from docutils import nodes

    parent = paragraph.parent
    while parent is not None:
        classes = parent.get("classes", []) if isinstance(parent, nodes.Element) else []
        if "key-terms" in classes or "cell" in classes or type(parent).__name__ == "title":
            return False
        parent = parent.parent
    return True


def _text_pieces(paragraph) -> tuple[str, list[tuple[object, int]]]:
    """The paragraph's prose as one string (a NUL where code, math, links or raw HTML sit, so
    that no match spans them) and, for each Text node, where it starts in that string."""
    from docutils import nodes

    text, pieces = [], []
    offset = 0
    for node in paragraph.findall(nodes.Text):
        parent, blocked = node.parent, False
        while parent is not None and parent is not paragraph:
            if type(parent).__name__ in _NO_GLOSS_INSIDE:
                blocked = True
                break
            parent = parent.parent
        piece = "\0" if blocked else str(node)
        if not blocked:
            pieces.append((node, offset))
        text.append(piece)
        offset += len(piece)
    return "".join(text), pieces


def _insert_after(paragraph, pieces, end: int, gloss) -> None:
    """Put ``gloss`` right after character ``end`` of the paragraph's prose string."""
    from docutils import nodes

    node, start = next((n, o) for n, o in reversed(pieces) if o < end)
    source = str(node)
    cut = end - start
    before, after = source[:cut], source[cut:]
    if after:
        node.parent.replace(node, [nodes.Text(before), gloss, nodes.Text(after)])
        return
    # The term ends its node: the gloss goes after the enclosing **bold** / *italic*.
    anchor = node
    while (
        anchor.parent is not paragraph
        and type(anchor.parent).__name__ in _INLINE_MARKUP
        and anchor.parent[-1] is anchor
    ):
        anchor = anchor.parent
    anchor.parent.insert(anchor.parent.index(anchor) + 1, gloss)


def _first_use_glosses(app, doctree, docname: str) -> None:
    """English chapters: the first use of each key term is followed by its Chinese name."""
    if edition(app) != "en" or not re.fullmatch(r"\d\d_[a-z_]+", docname):
        return
    from docutils import nodes

    remaining = [t for t in glossary_terms() if t.chapter == int(docname[:2])]
    glossary_uri = app.builder.get_relative_uri(docname, GLOSSARY_PAGE)
    prose = (nodes.paragraph, nodes.caption)  # figure captions are read as prose too
    for paragraph in list(doctree.findall(lambda n: isinstance(n, prose))):
        if not remaining:
            return
        if not _gloss_allowed(paragraph):
            continue
        search_from = 0
        while remaining:
            text, pieces = _text_pieces(paragraph)
            hits = [
                (m.start(), -len(m.group()), m, t)
                for t in remaining
                if (m := t.pattern.search(text, search_from))
            ]
            if not hits:
                break
            _, _, match, term = min(hits, key=lambda h: (h[0], h[1]))
            # A term inside the one glossed is glossed with it ("token" in "token id").
            remaining = [t for t in remaining if not t.pattern.search(match.group())]
            gloss = _raw_html(
                f' <a class="course-zh-gloss" href="{glossary_uri}#{term.slug}" lang="zh-CN" '
                f'title="{html.escape(term.term)}: {html.escape(term.zh)}">'
                f"({html.escape(term.zh)})</a>"
            )
            _insert_after(paragraph, pieces, match.end(), gloss)
            search_from = match.end() + 1  # the gloss is one NUL in the prose string


def _generated_is_output(app, doctree) -> None:
    """Text that a benchmark wrote (``{include}`` of ``benchmarks/*.md``) is output, like a code
    cell's: shared by both editions, never a message to translate (its numbers change with
    every run), and marked ``course-generated`` on the page."""
    from docutils import nodes

    root = str(REPO_ROOT / "benchmarks") + "/"
    generated = [
        n
        for n in doctree.findall(lambda n: isinstance(n, nodes.paragraph | nodes.table))
        if str(n.source or "").startswith(root)
    ]
    for node in generated:
        node["classes"].append("course-generated")
        for inner in node.findall(nodes.Element):  # a table's cells name the page as source
            inner["translatable"] = False


def _toc_captions_zh(app, doctree) -> None:
    """The Chinese edition's sidebar headings: the part captions from ``_toc.po``."""
    if edition(app) != "zh":
        return
    from sphinx import addnodes

    captions = _translated_captions()
    for toctree in doctree.findall(addnodes.toctree):
        caption = toctree.get("caption")
        if caption in captions:
            toctree["caption"] = captions[caption]


def setup(app) -> dict:
    # "doctree-read" comes after parsing and before the gettext builder or the Chinese
    # translation (the Locale transform) looks at the page.
    app.connect("doctree-read", _generated_is_output)
    app.connect("doctree-read", _toc_captions_zh)
    app.connect("doctree-resolved", _glossary_anchors)
    app.connect("doctree-resolved", _first_use_glosses)
    app.connect("html-page-context", _language_switch, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# ---------------------------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.authoring.i18n", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("translations", help="update the catalogues and list what needs translating")
    sub.add_parser("check", help="exit 1 while a catalogue is stale, untranslated or fuzzy")
    build = sub.add_parser("build", help="build the Chinese edition (after the English one)")
    build.add_argument("--force", action="store_true")
    sub.add_parser("stats", help="English words and Chinese characters per page")
    args = parser.parse_args(argv)
    try:
        if args.command == "translations":
            problems = update_catalogues()
            where = CATALOGUE_DIR.relative_to(REPO_ROOT)
            if problems:
                print(f"{len(problems)} message(s) need work in {where}/<page>.po:")
                for line in problems:
                    print("  " + line)
                print("Translate them (msgstr), clear the fuzzy flags, then `make book`.")
            else:
                print(f"The catalogues in {where} are complete and current.")
            return 0
        if args.command == "check":
            problems = catalogue_problems()
            for line in problems:
                print(line)
            print(f"{len(problems)} problem(s)")
            return 1 if problems else 0
        if args.command == "build":
            from course_lib.authoring import bookbuild

            build_zh(bookbuild.inputs_digest(bookbuild.selected_chapters()), force=args.force)
            return 0
        total_en = total_zh = 0
        print(f"{'page':34s} {'English words':>14s} {'Chinese characters':>19s}")
        for page, en, zh in word_counts():
            total_en, total_zh = total_en + en, total_zh + zh
            print(f"{page:34s} {en:14d} {zh:19d}")
        print(f"{'total':34s} {total_en:14d} {total_zh:19d}")
        return 0
    except TranslationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
