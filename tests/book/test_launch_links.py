"""Runnable from the page: every Colab and Binder link opens a committed notebook that starts by
installing ``course_lib`` when it is missing, from the one repository URL of ``_config.yml``.

The fast tests read files; the last one follows every launch link of the built HTML (slow, in
the "book" group that shares one build).
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import nbformat
import pytest
from conftest import REPO_ROOT, book_chapters

from course_lib.authoring import bookbuild
from course_lib.authoring.bookbuild import CHAPTERS


def _first_code_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.cell_type == "code")


def _run_install_cell(source: str, monkeypatch, *, installed: bool) -> list[list[str]]:
    """Execute the cell with ``find_spec`` and ``subprocess.run`` stubbed; return pip's argv."""
    import importlib.util

    calls: list[list[str]] = []
    real_find_spec = importlib.util.find_spec

    def find_spec(name, *args):
        return real_find_spec(name, *args) if installed or name != "course_lib" else None

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(subprocess, "run", lambda argv, check: calls.append(argv))
    exec(compile(source, "<install cell>", "exec"), {})
    return calls


def test_repository_url_comes_from_config():
    url = bookbuild.repository_url()
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url), url
    assert bookbuild.release_tag() == "v" + __import__("course_lib").__version__
    # Written once: no source of a notebook, chapter or tool names it.
    sources = [*(REPO_ROOT / "tools").rglob("*.py"), *(REPO_ROOT / "course_lib").rglob("*.py")]
    sources += list((REPO_ROOT / "book").glob("*.md"))
    for path in sources:
        assert url not in path.read_text(encoding="utf-8"), f"{path} hard-codes {url}"


def test_bad_repository_url_says_how_to_fix_it(tmp_path):
    config = tmp_path / "_config.yml"
    config.write_text("repository:\n  url: ''\n", encoding="utf-8")
    with pytest.raises(bookbuild.BookBuildError, match="repository: url"):
        bookbuild.repository_url(config)


def test_install_cell_installs_only_when_course_lib_is_missing(monkeypatch):
    source = bookbuild.install_cell_source()
    assert "{{" not in source
    assert _run_install_cell(source, monkeypatch, installed=True) == []
    (argv,) = _run_install_cell(source, monkeypatch, installed=False)
    package = f"course_lib @ git+{bookbuild.repository_url()}@{bookbuild.release_tag()}"
    assert argv == [sys.executable, "-m", "pip", "install", "--quiet", package]


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_exercise_notebooks_start_with_the_install_cell(chapter):
    for folder in ("solutions", "exercises"):
        nb = nbformat.read(REPO_ROOT / folder / chapter / f"{chapter}.ipynb", as_version=4)
        first = _first_code_cell(nb)
        assert first.source == bookbuild.install_cell_source(), f"{folder}/{chapter}"
        assert not first.metadata.get("nbgrader", {}).get("grade"), "the install cell is graded"
        assert not first.metadata.get("nbgrader", {}).get("solution")
        assert nb.cells[0].cell_type == "markdown", "the title comes before the install cell"


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_chapter_notebooks_are_committed_and_up_to_date(chapter):
    path = bookbuild.CHAPTER_NOTEBOOKS_DIR / f"{chapter}.ipynb"
    assert path.is_file(), f"{path} missing: run `make notebooks`"
    text = bookbuild.chapter_notebook(chapter)
    assert path.read_text(encoding="utf-8") == text, (
        f"{path.name} is out of date: run `make notebooks` and commit it with the chapter"
    )
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    assert _first_code_cell(nb).source == bookbuild.install_cell_source()
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "{literalinclude}" not in markdown and "{figure}" not in markdown
    chapter_md = (REPO_ROOT / "book" / f"{chapter}.md").read_text(encoding="utf-8")
    n_code = chapter_md.count("```{code-cell}")
    assert sum(c.cell_type == "code" for c in nb.cells) == n_code + 1, "one cell per code-cell"
    assert all(c.outputs == [] for c in nb.cells if c.cell_type == "code"), "no outputs stored"


def test_included_code_is_the_library_source():
    from course_lib.transformer import TransformerEncoder

    md = bookbuild._notebook_markdown(
        "```{literalinclude} ../course_lib/transformer.py\n:language: python\n"
        ":pyobject: TransformerEncoder.forward\n```",
        REPO_ROOT / "book",
    )
    expected = textwrap.dedent(inspect.getsource(TransformerEncoder.forward)).rstrip()
    assert md == f"```python\n{expected}\n```"


def test_launch_link_rewrite():
    app = types.SimpleNamespace(
        config=types.SimpleNamespace(html_theme_options={"path_to_docs": "book"})
    )
    base = "https://colab.research.google.com/github/org/repo/blob/main/"
    binder = "https://mybinder.org/v2/gh/org/repo/main?urlpath=lab/tree/"
    for page, source, target in [
        ("05_attention", "book/05_attention.md", "notebooks/05_attention.ipynb"),
        (
            "exercises/05_attention",
            "book/exercises/05_attention.ipynb",
            "exercises/05_attention/05_attention.ipynb",
        ),
    ]:
        context = {
            "header_buttons": [
                {"buttons": [{"url": base + source}, {"url": binder + source}]},
                {"url": "https://github.com/org/repo"},
            ]
        }
        bookbuild._fix_launch_links(app, page, None, context, None)
        urls = [b["url"] for b in context["header_buttons"][0]["buttons"]]
        assert urls == [base + target, binder + target]
        assert context["header_buttons"][1]["url"] == "https://github.com/org/repo"


def _launch_target(url: str) -> tuple[str, str, str] | None:
    """(org/repo, branch, path in the repository) of a Colab or Binder link, else None."""
    parsed = urlparse(url)
    if parsed.netloc == "colab.research.google.com":
        m = re.fullmatch(r"/github/([^/]+/[^/]+)/blob/([^/]+)/(.+)", parsed.path)
        assert m, f"unexpected Colab link {url}"
        return m.group(1), m.group(2), m.group(3)
    if parsed.netloc == "mybinder.org":
        m = re.fullmatch(r"/v2/gh/([^/]+/[^/]+)/([^/]+)", parsed.path)
        assert m, f"unexpected Binder link {url}"
        urlpath = parse_qs(parsed.query)["urlpath"][0]
        assert urlpath.startswith("lab/tree/"), url
        return m.group(1), m.group(2), urlpath.removeprefix("lab/tree/")
    return None


@pytest.mark.slow
@pytest.mark.xdist_group("book")
def test_every_launch_link_opens_a_committed_notebook(book_html: Path):
    repo = urlparse(bookbuild.repository_url()).path.strip("/")
    branch = bookbuild.repository_branch()
    pages = [book_html / f"{c}.html" for c in book_chapters()]
    pages += [book_html / "exercises" / f"{c}.html" for c in book_chapters()]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        targets = [t for u in re.findall(r'href="([^"]+)"', html) if (t := _launch_target(u))]
        assert len(targets) >= 2, f"{page.name}: no Colab and Binder links"
        for link_repo, link_branch, path in targets:
            assert (link_repo, link_branch) == (repo, branch), f"{page.name}: {link_repo}"
            file = REPO_ROOT / path
            assert file.is_file() and file.suffix == ".ipynb", f"{page.name} launches {path}"
            ignored = subprocess.run(
                ["git", "check-ignore", "-q", path], cwd=REPO_ROOT, check=False
            ).returncode
            assert ignored != 0, f"{path} is ignored by git, so the repository lacks it"
            nb = nbformat.read(file, as_version=4)
            nbformat.validate(nb)
            assert _first_code_cell(nb).source == bookbuild.install_cell_source()
