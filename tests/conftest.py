"""Shared fixtures. The book fixtures build it once per session (one xdist worker, group "book")."""

from __future__ import annotations

import functools
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def book_chapters() -> list[str]:
    """The chapters the book tests cover: all, or those in ``$COURSE_BOOK_ONLY`` (a comma list)."""
    from course_lib.authoring.bookbuild import ONLY_ENV, selected_chapters

    only = [c.strip() for c in os.environ.get(ONLY_ENV, "").split(",") if c.strip()]
    return selected_chapters(only or None)


@pytest.fixture(scope="session")
def book_html() -> Path:
    """The built HTML folder, reusing an up-to-date build (jupyter-cache makes rebuilds cheap)."""
    from course_lib.authoring import bookbuild

    try:
        bookbuild.build(book_chapters(), quiet=True)
    except bookbuild.BookBuildError as err:
        pytest.fail(f"the book does not build:\n{err}", pytrace=False)
    return bookbuild.HTML_DIR


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="session")
def book_server(book_html: Path) -> Iterator[str]:
    """Serve the built book on 127.0.0.1 (an ephemeral port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny models are fastest on one core, and extra threads thrash on a busy shared CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
