"""Build the book: ``python -m course_lib.authoring.bookbuild`` (what ``make book`` runs).

Three steps:

1. Copy each released graded notebook ``exercises/<id>/<id>.ipynb`` to
   ``book/exercises/<id>.ipynb`` (generated, not committed), with a first cell that links the
   notebook for download. The book shows these pages as they are, never executed.
2. Run ``jupyter-book build book --config _config.yml --path-output . -W --keep-going``:
   chapters execute (jupyter-cache skips unchanged ones) and any warning fails the build.
   When ``course_lib`` changed since the last build, the cache is emptied first, so that no
   chapter keeps outputs computed by the old library.
3. Record a stamp (a hash of every input) so that tests can reuse an up-to-date build.

``python -m course_lib.authoring.bookbuild --notebooks`` (``make notebooks``) does no build: it rewrites
the committed ``notebooks/<id>.ipynb`` of every chapter that changed, the notebooks that the
chapters' Colab and Binder links open (see :func:`chapter_notebook`). A test fails while one is
out of date, so a chapter and its notebook are committed together.

Options: ``--only 01_tensors,02_tokenization`` builds the appendix and just those chapters
(a quick check while writing); ``--force`` rebuilds even when the stamp says the HTML is
current. ``COURSE_EXERCISES_DIR`` points step 1 at another folder of ``<id>/<id>.ipynb``
notebooks (for trying the build before ``make release`` has produced the real ones).
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import copy
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

import nbformat
import yaml

from course_lib import chapters

REPO_ROOT = Path(__file__).resolve().parents[2]
BOOK_DIR = REPO_ROOT / "book"
CONFIG_PATH = REPO_ROOT / "_config.yml"
TOC_PATH = BOOK_DIR / "_toc.yml"
BUILD_DIR = REPO_ROOT / "_build"
HTML_DIR = BUILD_DIR / "html"
STAMP_PATH = HTML_DIR / ".bookbuild-stamp.json"
CACHE_DIR = BUILD_DIR / ".jupyter_cache"
LIBRARY_STAMP_PATH = BUILD_DIR / ".bookbuild-library"
EXTENSIONS_STAMP_PATH = BUILD_DIR / ".bookbuild-extensions"
GENERATED_EXERCISES_DIR = BOOK_DIR / "exercises"
CHAPTER_NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
PYPROJECT_PATH = REPO_ROOT / "pyproject.toml"
EXERCISES_ENV = "COURSE_EXERCISES_DIR"
ONLY_ENV = "COURSE_BOOK_ONLY"

# Chapter ids and titles, in the order of SYLLABUS.md (the registry is course_lib.chapters).
CHAPTERS: dict[str, str] = {c.id: c.title for c in chapters.CHAPTERS}
APPENDIX_PAGES = ("setup", "notation", "glossary", "instructors", "references")

# Marks the cell that this module adds to a copied notebook, so a re-run replaces it.
_INJECTED_TAG = "course-download-link"


class BookBuildError(RuntimeError):
    """The book cannot be built; the message says what to do."""


# ---------------------------------------------------------------------------------------------
# Step 1: the exercise pages.
# ---------------------------------------------------------------------------------------------


def exercises_source_dir() -> Path:
    """Where the released notebooks are read from: ``$COURSE_EXERCISES_DIR`` or ``exercises/``."""
    override = os.environ.get(EXERCISES_ENV)
    return Path(override).resolve() if override else REPO_ROOT / "exercises"


def selected_chapters(only: Sequence[str] | None = None) -> list[str]:
    """The chapter ids to build: all of them, or the ``only`` subset (checked)."""
    if not only:
        return list(CHAPTERS)
    unknown = [c for c in only if c not in CHAPTERS]
    if unknown:
        raise BookBuildError(f"unknown chapter id(s) {unknown}; choose from: {', '.join(CHAPTERS)}")
    return [c for c in CHAPTERS if c in only]


def _download_cell(chapter_id: str) -> nbformat.NotebookNode:
    number = int(chapter_id[:2])
    text = (
        f"```{{admonition}} Graded notebook for chapter {number}\n"
        ":class: tip\n"
        f"This page shows the notebook as it is handed out; it is not run here. "
        f"{{download}}`Download {chapter_id}.ipynb <{chapter_id}.ipynb>`, open it in "
        "Jupyter with the course package installed (see {doc}`../appendix/setup`), fill in "
        "every `YOUR CODE HERE`, run the test cells below each function, and answer the "
        "written questions at the end (`YOUR ANSWER HERE`; a person grades them). "
        f"The chapter that teaches it: {{doc}}`../{chapter_id}`.\n"
        "```"
    )
    return nbformat.v4.new_markdown_cell(text, metadata={"tags": [_INJECTED_TAG]})


def exercise_page(source: Path, chapter_id: str) -> nbformat.NotebookNode:
    """The released notebook with a download cell after its title (or a title added)."""
    nb = nbformat.read(source, as_version=4)
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if _INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    first_md = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), None)
    has_title = first_md is not None and nb.cells[first_md].source.lstrip().startswith("# ")
    if has_title:
        nb.cells.insert(first_md + 1, _download_cell(chapter_id))
    else:
        number = int(chapter_id[:2])
        title = nbformat.v4.new_markdown_cell(
            f"# Exercise {number}: {CHAPTERS[chapter_id]}", metadata={"tags": [_INJECTED_TAG]}
        )
        nb.cells[:0] = [title, _download_cell(chapter_id)]
    return nb


def prepare_exercise_pages(chapters: Sequence[str], source_dir: Path | None = None) -> list[Path]:
    """Write ``book/exercises/<id>.ipynb`` for each chapter; fail naming any missing notebook."""
    source_dir = source_dir or exercises_source_dir()
    missing = [
        str(source_dir / cid / f"{cid}.ipynb")
        for cid in chapters
        if not (source_dir / cid / f"{cid}.ipynb").is_file()
    ]
    if missing:
        raise BookBuildError(
            "graded notebook(s) not found:\n  "
            + "\n  ".join(missing)
            + "\nRun `make release` to generate exercises/ from solutions/ (or set "
            f"{EXERCISES_ENV} to a folder holding <id>/<id>.ipynb)."
        )
    GENERATED_EXERCISES_DIR.mkdir(parents=True, exist_ok=True)
    written = []
    for cid in chapters:
        page = exercise_page(source_dir / cid / f"{cid}.ipynb", cid)
        target = GENERATED_EXERCISES_DIR / f"{cid}.ipynb"
        text = nbformat.writes(page) + "\n"
        # Rewrite only on change, so Sphinx does not re-read an unchanged page.
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        written.append(target)
    return written


# ---------------------------------------------------------------------------------------------
# Launching a page on Colab or Binder: the repository, the install cell, the chapter notebooks.
# ---------------------------------------------------------------------------------------------

# Placeholders in the notebook sources (assignments/<id>.py), filled in when notebooks are
# built, so that the repository URL is written in one place only: _config.yml.
REPOSITORY_URL_TOKEN = "{{COURSE_REPOSITORY_URL}}"
RELEASE_TAG_TOKEN = "{{COURSE_RELEASE_TAG}}"

INSTALL_CELL_TEMPLATE = f"""\
# Colab and Binder start without the course package: install it from the course repository, at
# the release that matches this notebook. Where `course_lib` is importable already (your own
# machine, the grader), this cell does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("course_lib") is None:
    package = "course_lib @ git+{REPOSITORY_URL_TOKEN}@{RELEASE_TAG_TOKEN}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)"""


def repository_url(config_path: Path = CONFIG_PATH) -> str:
    """The course repository: ``repository: url:`` of ``_config.yml``, the one place it is set."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    url = str((config.get("repository") or {}).get("url") or "").rstrip("/")
    if not url.startswith("https://"):
        raise BookBuildError(
            f"{config_path.name} has no https repository URL (repository: url: {url!r}); set it "
            "to the course's public git repository, e.g. https://github.com/<org>/<repo>"
        )
    return url


def repository_branch(config_path: Path = CONFIG_PATH) -> str:
    """The branch the launch links name: ``repository: branch:`` of ``_config.yml``."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    return str((config.get("repository") or {}).get("branch") or "main")


def release_tag(pyproject: Path = PYPROJECT_PATH) -> str:
    """The git tag of this release of the course: ``v`` + the version in ``pyproject.toml``."""
    return "v" + tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]


def fill_placeholders(text: str) -> str:
    """Replace the repository and release placeholders of a notebook source."""
    return text.replace(REPOSITORY_URL_TOKEN, repository_url()).replace(
        RELEASE_TAG_TOKEN, release_tag()
    )


def install_cell_source() -> str:
    """The first code cell of every notebook a launch link opens (placeholders filled)."""
    return fill_placeholders(INSTALL_CELL_TEMPLATE)


_LITERALINCLUDE = re.compile(
    r"^```\{literalinclude\} (?P<path>\S+)\n(?P<options>(?::[\w-]+:[^\n]*\n)*)```$", re.M
)
_FIGURE = re.compile(
    r"^```\{figure\} (?P<path>\S+)\n(?P<options>(?::[\w-]+:[^\n]*\n)*)\n(?P<caption>.*?)^```$",
    re.M | re.S,
)


def _pyobject_source(path: Path, qualname: str) -> str:
    """The source of a function or class (``Class.method`` too), like Sphinx's ``:pyobject:``."""
    text = path.read_text(encoding="utf-8")
    nodes: list[ast.AST] = ast.parse(text).body
    node = None
    for part in qualname.split("."):
        node = next(
            (n for n in nodes if getattr(n, "name", None) == part and hasattr(n, "body")), None
        )
        if node is None:
            raise BookBuildError(f"{path.name} has no {qualname} (a literalinclude :pyobject:)")
        nodes = node.body
    lines = text.splitlines()
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    body = lines[start - 1 : node.end_lineno]
    indent = min(len(ln) - len(ln.lstrip()) for ln in body if ln.strip())
    return "\n".join(ln[indent:] for ln in body)


def _options(block: str) -> dict[str, str]:
    return dict(re.findall(r"^:([\w-]+):\s*(.*)$", block, re.M))


def _notebook_markdown(text: str, chapter_dir: Path) -> str:
    """MyST directives that Jupyter cannot show, as plain Markdown: included code, figures."""

    def include(m: re.Match) -> str:
        options = _options(m["options"])
        source = (chapter_dir / m["path"]).resolve()
        code = (
            _pyobject_source(source, options["pyobject"])
            if "pyobject" in options
            else source.read_text(encoding="utf-8").rstrip()
        )
        return f"```{options.get('language', '')}\n{code}\n```"

    def figure(m: re.Match) -> str:
        options = _options(m["options"])
        image = (chapter_dir / m["path"]).resolve()
        kind = {".svg": "svg+xml", ".png": "png", ".jpg": "jpeg"}[image.suffix.lower()]
        data = base64.b64encode(image.read_bytes()).decode("ascii")
        alt = options.get("alt", "").replace("[", "(").replace("]", ")")
        caption = " ".join(m["caption"].split())
        return f"![{alt}](data:image/{kind};base64,{data})\n\n*{caption}*"

    return _FIGURE.sub(figure, _LITERALINCLUDE.sub(include, text))


def chapter_notebook(chapter_id: str) -> str:
    """``book/<id>.md`` as the Jupyter notebook its launch links open (JSON text, no outputs).

    jupytext turns the MyST notebook into cells; the install cell comes right after the title
    cell; included code and figures become plain Markdown, since Colab and JupyterLab do not
    run Sphinx. Outputs are not stored (as for every notebook in the repository): the reader
    runs the cells. The result is deterministic, so an unchanged chapter gives the same bytes.
    """
    import jupytext

    source = BOOK_DIR / f"{chapter_id}.md"
    nb = jupytext.reads(source.read_text(encoding="utf-8"), fmt="md:myst")
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _notebook_markdown(cell.source, source.parent)
    first_markdown = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    nb.cells.insert(first_markdown + 1, nbformat.v4.new_code_cell(install_cell_source()))
    for i, cell in enumerate(nb.cells):
        cell.id = f"{chapter_id}-{i:03d}"
        cell.metadata.pop("jupytext", None)
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nbformat.writes(nb) + "\n"


def write_chapter_notebooks(chapters: Sequence[str] | None = None) -> list[Path]:
    """Write ``notebooks/<id>.ipynb`` for each chapter whose notebook is out of date."""
    written = []
    CHAPTER_NOTEBOOKS_DIR.mkdir(exist_ok=True)
    for cid in chapters or list(CHAPTERS):
        target = CHAPTER_NOTEBOOKS_DIR / f"{cid}.ipynb"
        text = chapter_notebook(cid)
        if not target.is_file() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


# ---------------------------------------------------------------------------------------------
# Step 2: the table of contents and the jupyter-book run.
# ---------------------------------------------------------------------------------------------


def load_toc(path: Path = TOC_PATH) -> dict:
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def toc_files(toc: dict) -> list[str]:
    """Every ``file:`` entry of a jb-book toc, root first, in reading order."""
    files = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return files


def partial_toc(chapters: Sequence[str], toc: dict | None = None) -> dict:
    """The toc with only the given chapters (and their exercise pages) kept."""
    toc = copy.deepcopy(toc if toc is not None else load_toc())
    dropped = {c for c in CHAPTERS if c not in chapters}
    dropped |= {f"exercises/{c}" for c in dropped}

    def keep(entries: list[dict]) -> list[dict]:
        kept = []
        for entry in entries:
            if entry.get("file") in dropped:
                continue
            if "sections" in entry:
                entry["sections"] = keep(entry["sections"])
                if not entry["sections"]:
                    del entry["sections"]
            kept.append(entry)
        return kept

    parts = []
    for part in toc.get("parts", []):
        part["chapters"] = keep(part.get("chapters", []))
        if part["chapters"]:
            parts.append(part)
    toc["parts"] = parts
    return toc


def _input_files(chapters: Sequence[str]) -> Iterator[Path]:
    """Everything whose change can change the HTML."""
    yield CONFIG_PATH
    # The catalogues of the Chinese edition (locale/) change only that edition.
    skipped = {"_build", "exercises", "locale"} | {f"{c}.md" for c in CHAPTERS if c not in chapters}
    for path in sorted(BOOK_DIR.rglob("*")):
        rel = path.relative_to(BOOK_DIR).parts
        if path.is_file() and rel[0] not in skipped and ".ipynb_checkpoints" not in rel:
            yield path
    for path in sorted((REPO_ROOT / "course_lib").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path
    source_dir = exercises_source_dir()
    for cid in chapters:
        yield source_dir / cid / f"{cid}.ipynb"


def inputs_digest(chapters: Sequence[str]) -> str:
    """A hash of the inputs of a build of these chapters."""
    h = hashlib.sha256()
    h.update(json.dumps(list(chapters)).encode())
    for path in _input_files(chapters):
        h.update(
            str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path).encode()
        )
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
    return h.hexdigest()


def library_digest() -> str:
    """A hash of what the chapters import: ``course_lib``'s code and data (not the instructor's
    grading tools nor the book's own build code, which no chapter runs)."""
    pkg = REPO_ROOT / "course_lib"
    h = hashlib.sha256()
    for path in sorted(pkg.rglob("*")):
        rel = path.relative_to(pkg)
        if (
            path.is_file()
            and "__pycache__" not in rel.parts
            and rel.parts[0] not in {"instructor", "authoring", "bookbuild.py"}
        ):
            h.update(str(rel).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def extensions_digest() -> str:
    """A hash of the book's own Sphinx extensions: this module and ``course_lib/authoring``."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    for path in sorted((REPO_ROOT / "course_lib" / "authoring").glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def drop_stale_outputs() -> bool:
    """Empty the execution cache when ``course_lib`` changed since it was filled.

    jupyter-cache keys a chapter's outputs on the chapter's own code cells, so a change to the
    library (a figure's style, a number it computes) would leave the old outputs in the book.
    Returns True when the cache was emptied: every page must then be read, and run, again.
    """
    recorded = LIBRARY_STAMP_PATH.read_text().strip() if LIBRARY_STAMP_PATH.is_file() else ""
    if recorded == library_digest() or not CACHE_DIR.exists():
        return False
    shutil.rmtree(CACHE_DIR)
    return True


def is_up_to_date(only: Sequence[str] | None = None) -> bool:
    """True when the HTML was built, successfully, from exactly the current inputs."""
    chapters = selected_chapters(only)
    if not STAMP_PATH.is_file() or not (HTML_DIR / "index.html").is_file():
        return False
    try:
        stamp = json.loads(STAMP_PATH.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return stamp.get("digest") == inputs_digest(chapters)


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time in this checkout (tests and `make book` may overlap)."""
    BUILD_DIR.mkdir(exist_ok=True)
    with open(BUILD_DIR / ".bookbuild.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def jupyter_book_command(toc_path: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from jupyter_book.cli.main import main; main()",
        "build",
        str(BOOK_DIR),
        "--config",
        str(CONFIG_PATH),
        "--toc",
        str(toc_path),
        "--path-output",
        str(REPO_ROOT),
        "-W",
        "--keep-going",
    ]


def build(only: Sequence[str] | None = None, *, force: bool = False, quiet: bool = False) -> Path:
    """Build the HTML (unless it is up to date) and return ``_build/html/index.html``.

    Raises:
        BookBuildError: a graded notebook is missing, or jupyter-book failed (any warning,
            any error in an executed cell).
    """
    chapters = selected_chapters(only)
    index = HTML_DIR / "index.html"
    with _build_lock():
        if not force and is_up_to_date(chapters):
            if not quiet:
                print(f"The book is up to date: {index}")
        else:
            _build_english(chapters, quiet=quiet)
        if len(chapters) == len(CHAPTERS):
            # The Chinese edition (a full build only), from the execution cache just filled.
            from course_lib.authoring import i18n

            try:
                i18n.build_zh(inputs_digest(chapters), force=force, quiet=quiet)
            except i18n.TranslationError as err:
                raise BookBuildError(str(err)) from err
    if not quiet:
        print(f"The book is at {index}")
    return index


def _build_english(chapters: Sequence[str], *, quiet: bool) -> None:
    """The English edition: jupyter-book runs the chapters whose cached outputs are stale."""
    prepare_exercise_pages(chapters)
    toc_path = TOC_PATH
    if len(chapters) < len(CHAPTERS):
        toc_path = BUILD_DIR / "_toc.partial.yml"
        toc_path.write_text(yaml.safe_dump(partial_toc(chapters), sort_keys=False))
    digest = inputs_digest(chapters)
    STAMP_PATH.unlink(missing_ok=True)
    # A partial and a full build share the doctrees; switching between them must re-read
    # every page so that the navigation is right, which `--all` forces.
    previous = BUILD_DIR / ".bookbuild-last-selection"
    selection = ",".join(chapters)
    command = jupyter_book_command(toc_path)
    stale = drop_stale_outputs()
    extensions = EXTENSIONS_STAMP_PATH.read_text() if EXTENSIONS_STAMP_PATH.is_file() else ""
    # Sphinx re-writes only the pages whose source changed; a change to our own Sphinx
    # extensions (this module, course_lib/authoring/) changes every page.
    if (
        stale
        or not previous.is_file()
        or previous.read_text() != selection
        or extensions != extensions_digest()
    ):
        command.append("--all")
    start = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        capture_output=quiet,
        text=True,
    )
    if result.returncode != 0:
        detail = ""
        if quiet:
            detail = "\n" + _tail(result.stdout + result.stderr, 60)
        raise BookBuildError(
            f"jupyter-book failed (exit {result.returncode}); warnings count as errors. "
            f"Reports of failing chapters are in {HTML_DIR / 'reports'}.{detail}"
        )
    previous.write_text(selection)
    LIBRARY_STAMP_PATH.write_text(library_digest())
    EXTENSIONS_STAMP_PATH.write_text(extensions_digest())
    STAMP_PATH.write_text(
        json.dumps({"digest": digest, "chapters": chapters, "seconds": time.perf_counter() - start})
    )


def _tail(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------
# Sphinx extension (listed in _config.yml): launch links of the exercise pages.
# ---------------------------------------------------------------------------------------------


def _fix_launch_links(app, pagename: str, templatename, context: dict, doctree) -> None:
    """Point the Binder and Colab links of a page at a notebook that the repository holds.

    The theme would name the page's source: ``book/<id>.md`` for a chapter, which Colab cannot
    open, or the generated, uncommitted ``book/exercises/<id>.ipynb`` for an exercise page.
    Chapters open ``notebooks/<id>.ipynb`` and exercise pages ``exercises/<id>/<id>.ipynb``,
    both committed and both starting with the cell that installs ``course_lib``.
    """
    book_rel = app.config.html_theme_options.get("path_to_docs", "").strip("/")
    prefix = f"{book_rel}/" if book_rel else ""
    if pagename.startswith("exercises/"):
        cid = pagename.split("/", 1)[1]
        generated = f"{prefix}{pagename}.ipynb"
        committed = f"exercises/{cid}/{cid}.ipynb"
    elif pagename in CHAPTERS:
        generated = f"{prefix}{pagename}.md"
        committed = f"{CHAPTER_NOTEBOOKS_DIR.name}/{pagename}.ipynb"
    else:
        return

    def rewrite(buttons: list) -> None:
        for button in buttons:
            if isinstance(button.get("url"), str):
                button["url"] = button["url"].replace(generated, committed)
            rewrite(button.get("buttons", []))

    rewrite(context.get("header_buttons", []))


def _drop_thebe_assets(app, pagename: str, templatename, context: dict, doctree) -> None:
    """Remove sphinx-thebe's scripts: live code is off, and they name a CDN bundle.

    jupyter-book always loads sphinx-thebe; its configuration script can end up on a page twice,
    which is a "const redeclared" error in the browser console.
    """

    def is_thebe(asset) -> bool:
        name = str(getattr(asset, "filename", asset) or "")
        body = str(getattr(asset, "attributes", {}).get("body", ""))
        return "sphinx-thebe" in name or "THEBE_JS_URL" in body

    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [a for a in context[key] if not is_thebe(a)]


def setup(app) -> dict:
    # After sphinx-book-theme's own html-page-context handlers (priority 501).
    app.connect("html-page-context", _fix_launch_links, priority=900)
    app.connect("html-page-context", _drop_thebe_assets, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.authoring.bookbuild", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--only",
        default=os.environ.get(ONLY_ENV, ""),
        help="comma-separated chapter ids to build (default: all; env " + ONLY_ENV + ")",
    )
    parser.add_argument("--force", action="store_true", help="build even if up to date")
    parser.add_argument(
        "--notebooks", action="store_true", help="only write notebooks/<id>.ipynb, no build"
    )
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    try:
        if args.notebooks:
            for path in write_chapter_notebooks(selected_chapters(only or None)):
                print(f"wrote {path.relative_to(REPO_ROOT)}")
            return 0
        build(only or None, force=args.force)
    except BookBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
