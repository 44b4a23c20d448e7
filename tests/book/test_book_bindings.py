"""Numbers in the prose are bound to the outputs that produce them, and pages read well.

The mechanism: a chapter states a number with myst-nb's ``{glue:text}`key:fmt``` role, filled in
from ``glue("key", value)`` in a code cell, or states a claim after a (usually ``remove-cell``)
cell that asserts it. The book is built with ``-W`` and ``allow_errors: false``, so a changed
output either changes the text or fails the build. The slow test proves that on a throwaway book
built with the real configuration and the real jupyter-book command.

Fast checks over every chapter source: each glue key the prose uses is glued by the chapter; no
code line that the reader sees is wider than the code column, in the code cells and in the
``course_lib`` source that ``{literalinclude}`` directives show. Over the built HTML: no output
shows ``grad_fn=``; no line of a rendered code block is wider than the code column.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import book_chapters

from course_lib.authoring import bookbuild

# Characters of a code line that fit sphinx-book-theme's code column at its default layout, as
# measured in Chromium in the 1280 x 900 window of the browser tests: a code block is 666 px
# wide, 634 px inside its padding, and 14 px monospace takes 8.43 px per character (75.2).
CODE_COLUMN = 75

_CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(?P<body>.*?)^```", re.M | re.S)
_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`(?:[^`:]+::)?(?P<key>[A-Za-z0-9_]+)(?::[^`]*)?`")
_GLUE_CALL = re.compile(r"""\bglue\(\s*(?P<f>f?)(?P<q>["'])(?P<key>.*?)(?P=q)""")


def _cells(text: str) -> list[tuple[list[str], list[str]]]:
    """(tags, source lines) of every code cell of a MyST notebook."""
    cells = []
    for match in _CODE_CELL.finditer(text):
        lines = match["body"].splitlines()
        tags: list[str] = []
        while lines and lines[0].startswith(":"):
            option = lines.pop(0)
            if option.startswith(":tags:"):
                tags = re.findall(r"[\w-]+", option.split(":", 2)[2])
        cells.append((tags, lines))
    return cells


def _glued_keys(text: str) -> list[re.Pattern]:
    """The keys that the chapter's cells glue, as patterns (an f-string key matches any fill)."""
    patterns = []
    for _, lines in _cells(text):
        for call in _GLUE_CALL.finditer("\n".join(lines)):
            parts = re.split(r"\{[^}]*\}", call["key"]) if call["f"] else [call["key"]]
            patterns.append(re.compile("[A-Za-z0-9_]*".join(map(re.escape, parts)) + r"\Z"))
    return patterns


def _source(cid: str) -> str:
    return (bookbuild.BOOK_DIR / f"{cid}.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("cid", book_chapters())
def test_every_glued_number_in_the_prose_is_glued_by_the_chapter(cid):
    text = _source(cid)
    glued = _glued_keys(text)
    used = {m["key"] for m in _GLUE_ROLE.finditer(text)}
    missing = sorted(k for k in used if not any(p.match(k) for p in glued))
    assert not missing, f"{cid}: the prose uses glue keys that no cell glues: {missing}"


def test_the_glue_checks_see_f_string_keys():
    text = 'x\n```{code-cell} ipython3\nfor n in (3, 5):\n    glue(f"overlap_{n}", n)\n```\n'
    (pattern,) = _glued_keys(text)
    assert pattern.match("overlap_3") and not pattern.match("other_3")


@pytest.mark.parametrize("cid", book_chapters())
def test_no_code_line_is_wider_than_the_code_column(cid):
    wide = [
        f"{len(line)} chars: {line.strip()[:60]}"
        for tags, lines in _cells(_source(cid))
        if not {"remove-cell", "remove-input"} & set(tags)
        for line in lines
        if len(line) > CODE_COLUMN
    ]
    assert not wide, (
        f"{cid}: {len(wide)} code line(s) wider than the {CODE_COLUMN}-character code column; "
        "break them (ruff style):\n  " + "\n  ".join(wide)
    )


# The literalinclude options this module knows how to measure (see _included_lines).
_INCLUDE_OPTIONS = {"language", "pyobject"}


def _included_lines(cid: str) -> list[tuple[str, str, list[str]]]:
    """(file, object, lines) of every ``{literalinclude}`` of a chapter, as the page shows them.

    ``:pyobject:`` is cut out by the book build's own helper. Sphinx does not dedent it (no
    ``:dedent:`` option), so a method keeps the class body's indentation on the page, which the
    helper strips: it is added back (ruff's four spaces per level of nesting).
    """
    included = []
    for match in bookbuild._LITERALINCLUDE.finditer(_source(cid)):
        options = bookbuild._options(match["options"])
        unknown = set(options) - _INCLUDE_OPTIONS
        assert not unknown, (
            f"{cid}: a literalinclude of {match['path']} uses {sorted(unknown)}, which "
            "_included_lines does not apply yet; teach it those options (as Sphinx applies "
            "them) so the included lines are still measured"
        )
        path = (bookbuild.BOOK_DIR / match["path"]).resolve()
        name = options.get("pyobject", "")
        if name:
            indent = " " * 4 * name.count(".")
            code = bookbuild._pyobject_source(path, name)
            lines = [indent + line if line else line for line in code.splitlines()]
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
        included.append((path.relative_to(bookbuild.REPO_ROOT).as_posix(), name, lines))
    return included


@pytest.mark.parametrize("cid", book_chapters())
def test_no_included_source_line_is_wider_than_the_code_column(cid):
    """The ``course_lib`` source a chapter shows fits the code column like its code cells."""
    wide = [
        f"{path} {name or '(whole file)'}, line {n} ({len(line)} chars): {line.strip()[:50]}"
        for path, name, lines in _included_lines(cid)
        for n, line in enumerate(lines, 1)
        if len(line) > CODE_COLUMN
    ]
    assert not wide, (
        f"{cid}: {len(wide)} included source line(s) wider than the {CODE_COLUMN}-character "
        "code column (line n of the object as shown); wrap them in course_lib, ruff style, "
        "in a way that `ruff format` (100 columns) keeps:\n  " + "\n  ".join(wide)
    )


def test_included_lines_keep_a_methods_indentation():
    """A ``Class.method`` include is measured with the indentation the page shows."""
    cid = next(
        (c for c in book_chapters() if "TransformerEncoderLayer.forward" in _source(c)), None
    )
    if cid is None:
        pytest.skip("chapter 9 is not among the selected chapters")
    (lines,) = [ls for _, n, ls in _included_lines(cid) if n == "TransformerEncoderLayer.forward"]
    assert lines[0].startswith("    def forward(")


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_no_built_page_prints_grad_fn():
    """Outputs are computed under torch.no_grad() (or detached): no ``grad_fn=`` noise."""
    pages = sorted(bookbuild.HTML_DIR.glob("[0-9][0-9]_*.html"))
    if not pages:
        pytest.skip("the book is not built (python -m course_lib.authoring.bookbuild)")
    noisy = [p.name for p in pages if "grad_fn=" in p.read_text(encoding="utf-8")]
    assert not noisy, f"pages that print grad_fn=: {noisy}; run the cell under torch.no_grad()"


class _CodeBlocks(HTMLParser):
    """The text of every ``div.highlight pre`` of a page that is not inside a cell's output."""

    _VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._open: list[tuple[str, set[str]]] = []  # the open elements and their classes
        self._pre: list[str] | None = None
        self._pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._VOID:
            return
        self._open.append((tag, set((dict(attrs).get("class") or "").split())))
        if tag == "pre" and self._pre is None:
            classes = [c for _, cs in self._open[:-1] for c in cs]
            if "highlight" in classes and "cell_output" not in classes:
                self._pre, self._pre_depth = [], len(self._open)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            closed, _ = self._open.pop()
            if self._pre is not None and len(self._open) < self._pre_depth:
                self.blocks.append("".join(self._pre))
                self._pre = None
            if closed == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._pre is not None:
            self._pre.append(data)


def _code_blocks(html: str) -> list[str]:
    parser = _CodeBlocks()
    parser.feed(html)
    parser.close()
    return parser.blocks


def test_the_code_block_reader_skips_outputs():
    html = (
        '<div class="cell_input"><div class="highlight"><pre><span>x</span> = 1\n'
        "y = 2</pre></div></div>"
        '<div class="cell_output"><div class="output"><div class="highlight">'
        "<pre>out</pre></div></div></div><br><pre>plain</pre>"
    )
    assert _code_blocks(html) == ["x = 1\ny = 2"]


@pytest.mark.slow
@pytest.mark.xdist_group("book")
@pytest.mark.parametrize("cid", book_chapters())
def test_no_rendered_code_line_is_wider_than_the_code_column(book_html, cid):
    """What the reader gets: every code block of the English page, included source too."""
    page = book_html / f"{cid}.html"
    assert page.is_file(), f"{page} was not built"
    blocks = _code_blocks(page.read_text(encoding="utf-8"))
    assert blocks, f"{page.name} shows no code block: has the theme's markup changed?"
    wide = [
        f"block {b}, line {n} ({len(line)} chars): {line.strip()[:60]}"
        for b, block in enumerate(blocks, 1)
        for n, line in enumerate(block.splitlines(), 1)
        if len(line) > CODE_COLUMN
    ]
    assert not wide, (
        f"{page.name}: {len(wide)} rendered code line(s) wider than the {CODE_COLUMN}-character "
        "code column:\n  " + "\n  ".join(wide)
    )


# ---------------------------------------------------------------------------------------------
# Slow: a throwaway book shows that a broken binding fails the real build command.
# ---------------------------------------------------------------------------------------------

_FRONT = bookbuild.BOOK_DIR.joinpath("01_tensors.md").read_text(encoding="utf-8").split("\n# ")[0]


def _chapter(value: str, prose_key: str) -> str:
    """A chapter that computes a share, glues it, asserts a claim about it and quotes it."""
    return _FRONT + textwrap.dedent(
        f"""
        # Bound numbers

        ```{{code-cell}} ipython3
        from myst_nb import glue

        hits, total = {value}, 8
        print(f"share: {{hits / total:.2f}}")
        ```

        ```{{code-cell}} ipython3
        :tags: [remove-cell]
        glue("share", hits / total, display=False)
        assert hits / total < 0.5  # the prose says "less than half"
        ```

        Less than half of the draws hit: {{glue:text}}`{prose_key}:.1%`.
        """
    )


def _build(tmp_path: Path, chapter: str) -> subprocess.CompletedProcess:
    book = tmp_path / "book"
    book.mkdir(parents=True, exist_ok=True)
    (book / "intro.md").write_text("# A throwaway book\n\nOne page.\n", encoding="utf-8")
    (book / "bound.md").write_text(chapter, encoding="utf-8")
    toc = book / "_toc.yml"
    toc.write_text("format: jb-book\nroot: intro\nchapters:\n  - file: bound\n", encoding="utf-8")
    # The real command (its -W and --keep-going included) with the paths moved to tmp_path.
    command = bookbuild.jupyter_book_command(toc)
    command[command.index(str(bookbuild.BOOK_DIR))] = str(book)
    command[command.index(str(bookbuild.REPO_ROOT))] = str(tmp_path)
    assert str(bookbuild.CONFIG_PATH) in command and "-W" in command
    return subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_a_broken_binding_fails_the_build(tmp_path):
    ok = _build(tmp_path / "ok", _chapter("3", "share"))
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    page = (tmp_path / "ok" / "_build" / "html" / "bound.html").read_text(encoding="utf-8")
    assert "37.5%" in page  # the glued number is in the text, formatted

    # The output changes so that the asserted claim is false: the chapter fails to execute.
    wrong = _build(tmp_path / "wrong", _chapter("5", "share"))
    assert wrong.returncode != 0
    assert "AssertionError" in wrong.stdout + wrong.stderr

    # The prose names a number that no output provides: the glue warning fails the build.
    stale = _build(tmp_path / "stale", _chapter("3", "old_share"))
    assert stale.returncode != 0
    assert "old_share" in stale.stdout + stale.stderr
