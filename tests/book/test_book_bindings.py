"""Numbers in the prose are bound to the outputs that produce them, and pages read well.

The mechanism: a chapter states a number with myst-nb's ``{glue:text}`key:fmt``` role, filled in
from ``glue("key", value)`` in a code cell, or states a claim after a (usually ``remove-cell``)
cell that asserts it. The book is built with ``-W`` and ``allow_errors: false``, so a changed
output either changes the text or fails the build. The slow test proves that on a throwaway book
built with the real configuration and the real jupyter-book command.

Fast checks over every chapter source: each glue key the prose uses is glued by the chapter; no
code line that the reader sees is wider than the code column. Over the built HTML (when it
exists): no output shows ``grad_fn=``.
"""

from __future__ import annotations

import re
import subprocess
import textwrap
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


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_no_built_page_prints_grad_fn():
    """Outputs are computed under torch.no_grad() (or detached): no ``grad_fn=`` noise."""
    pages = sorted(bookbuild.HTML_DIR.glob("[0-9][0-9]_*.html"))
    if not pages:
        pytest.skip("the book is not built (python -m course_lib.authoring.bookbuild)")
    noisy = [p.name for p in pages if "grad_fn=" in p.read_text(encoding="utf-8")]
    assert not noisy, f"pages that print grad_fn=: {noisy}; run the cell under torch.no_grad()"


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
