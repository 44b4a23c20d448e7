"""Publishing: `make publish` (ghp-import to a gh-pages branch), the Pages workflow files, and the
one setting that names the repository.

These machines cannot reach GitHub or GitLab: `make publish` pushes to a local bare repository,
from a tiny fake site instead of the built book, and the workflow files are parsed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Course Test",
    "GIT_AUTHOR_EMAIL": "test@example.org",
    "GIT_COMMITTER_NAME": "Course Test",
    "GIT_COMMITTER_EMAIL": "test@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def _git(*args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=dict(os.environ, **GIT_ENV),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A git repository with this Makefile and set-up step (the project's own .venv)."""
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO_ROOT / "Makefile", work / "Makefile")
    (work / "tools").symlink_to(REPO_ROOT / "tools")
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", "Makefile", cwd=work)
    _git("commit", "-q", "-m", "course", cwd=work)
    return work


def _publish(work: Path, site: Path, remote: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "publish",
            f"SITE={site}",
            f"REMOTE={remote}",
            f"PYTHON={sys.executable}",
            f"VENV={REPO_ROOT / '.venv'}",
        ],
        cwd=work,
        env=dict(os.environ, **GIT_ENV),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_publish_pushes_the_whole_site_to_gh_pages(checkout: Path, tmp_path: Path) -> None:
    remote, site = tmp_path / "remote.git", tmp_path / "html"
    _git("init", "-q", "--bare", str(remote))
    _write(
        site,
        {
            "index.html": "<h1>Transformer Fundamentals</h1>",
            "zh/index.html": "<h1>Transformer 基础</h1>",
            "_static/book.css": "body{}",
            "old.html": "gone next time",
        },
    )
    done = _publish(checkout, site, remote)
    assert done.returncode == 0, done.stdout + done.stderr

    def published() -> set[str]:
        return set(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split())

    assert published() == {
        ".nojekyll",
        "index.html",
        "zh/index.html",
        "_static/book.css",
        "old.html",
    }
    assert _git("show", "gh-pages:zh/index.html", cwd=remote) == "<h1>Transformer 基础</h1>"
    assert _git("show", "gh-pages:.nojekyll", cwd=remote) == ""
    head = _git("rev-parse", "--short", "HEAD", cwd=checkout).strip()
    assert f"Publish the book from {head}" in _git(
        "log", "-1", "--format=%s", "gh-pages", cwd=remote
    )

    # A second publish replaces the branch's files by the site's: a deleted page disappears.
    (site / "old.html").unlink()
    _write(site, {"index.html": "<h1>Second edition</h1>"})
    done = _publish(checkout, site, remote)
    assert done.returncode == 0, done.stdout + done.stderr
    assert published() == {".nojekyll", "index.html", "zh/index.html", "_static/book.css"}
    assert _git("show", "gh-pages:index.html", cwd=remote) == "<h1>Second edition</h1>"
    assert _git("rev-list", "--count", "gh-pages", cwd=remote).strip() == "2"
    assert _git("branch", "--list", "main", cwd=remote) == ""  # only the site is pushed


def test_make_publish_without_a_built_site_says_what_to_run(checkout: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    _git("init", "-q", "--bare", str(remote))
    done = _publish(checkout, tmp_path / "nothing", remote)
    assert done.returncode != 0
    assert f"{tmp_path / 'nothing'}/index.html is missing: run make book first" in done.stdout
    assert _git("branch", "--list", cwd=remote) == ""


def _make_calls(commands: list[str]) -> list[str]:
    """The make targets named by shell lines, in order (``make book PYTHON=x`` -> ``book``)."""
    targets = []
    for line in commands:
        for match in re.finditer(r"(?:^|&&|;)\s*make\s+([^;&]*)", line):
            targets += [w for w in match.group(1).split() if "=" not in w and w[0] != "-"]
    return targets


def test_github_and_gitlab_pages_build_with_make_book_and_upload_the_html() -> None:
    github = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "book.yml").read_text())
    gitlab = yaml.safe_load((REPO_ROOT / ".gitlab-ci.yml").read_text())

    steps = github["jobs"]["build"]["steps"]
    github_runs = [s["run"] for s in steps if "run" in s]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert upload["with"]["path"] == "_build/html"
    assert python["with"]["python-version"] == "3.11"
    assert github["permissions"]["pages"] == "write"
    deploy = github["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["steps"][0]["uses"].startswith("actions/deploy-pages")

    pages = gitlab["pages"]
    assert pages["image"].startswith("python:3.11")
    assert pages["artifacts"]["paths"] == ["public"]
    assert "rm -rf public && cp -r _build/html public" in pages["script"]

    assert _make_calls(github_runs) == _make_calls(pages["script"]) == ["book"]
    targets = re.findall(r"^([a-z-]+):", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert "book" in targets and "publish" in targets


def test_make_calls_reads_targets() -> None:
    assert _make_calls(["make book PYTHON=python3.11", "cd x && make -j2 test lint"]) == [
        "book",
        "test",
        "lint",
    ]
    assert _make_calls(["cmake .", "echo make"]) == []


def test_the_repository_is_named_in_one_place() -> None:
    """_config.yml's repository.url is the setting; every other mention must agree with it."""
    config = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    url = config["repository"]["url"]
    match = re.fullmatch(r"https://(github|gitlab)\.com/([\w.-]+)/([\w.-]+)", url)
    assert match, f"repository.url must be https://github.com/OWNER/NAME, not {url!r}"
    slug = f"{match[2]}/{match[3]}"
    mentioned: dict[str, set[str]] = {}
    for rel in ["README.md", "book/appendix/setup.md", "tests/book/test_book.py"]:
        text = (REPO_ROOT / rel).read_text(encoding="utf-8")
        for found in re.findall(r"(?:github|gitlab)\.com/([\w-]+/[\w.-]+)", text):
            found = found.rstrip(".").removesuffix(".git")
            mentioned.setdefault(found, set()).add(rel)
    others = {s: files for s, files in mentioned.items() if s != slug}
    assert not others, f"_config.yml names {slug}; these files name another repository: {others}"
    assert slug in mentioned
