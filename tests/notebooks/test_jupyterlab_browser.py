"""The student's view: JupyterLab on localhost in headless Chromium.

Open a released exercise, type a correct solution into its solution cells, run all cells
(Run > Run All Cells), and see every test cell pass silently (no error, nothing on stderr) and
the explorer widget built on the student's own function render its figure.

Every wait is for an event (the server answers, the kernel reports idle, the last cell gets its
execution count, the widget draws its image), however long a busy machine takes; HANG_GUARD_MS
only ends a run that will never finish (a dead kernel, a stuck page).
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import notebook_harness as H
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.xdist_group("jupyterlab")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
CHAPTER = "04_positions"
HANG_GUARD_MS = 30 * 60 * 1000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A JupyterLab server on 127.0.0.1 serving a copy of the exercise; yields (url, token)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(H.EXERCISES / CHAPTER / f"{CHAPTER}.ipynb", root / f"{CHAPTER}.ipynb")
    # Render every cell (no windowing), so that cells far down the notebook are in the page.
    settings = root / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(
        os.environ,
        JUPYTER_CONFIG_DIR=str(root / ".jupyter"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    env["JUPYTERLAB_SETTINGS_DIR"] = str(root / ".settings")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            "--allow-root",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            f"--LabServerApp.workspaces_dir={root / '.workspaces'}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + HANG_GUARD_MS / 1000
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=30)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab exited with {server.returncode}", pytrace=False)
                if time.monotonic() > deadline:
                    pytest.fail("JupyterLab never answered (hang guard)", pytrace=False)
                time.sleep(1)
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


def _solution_bodies() -> dict[str, str]:
    """What the student types: each solution cell without the solution markers."""
    return {k: H.strip_markers(c.source) for k, c in H.solution_cells(H.solution(CHAPTER)).items()}


def test_student_solves_one_function_in_jupyterlab(lab: tuple[str, str]) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    url, token = lab
    nb = H.released(CHAPTER)
    index = {H.grade_id(c): i for i, c in enumerate(nb.cells)}
    plain = [
        i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "nbgrader" not in c.metadata
    ]
    # The last plain cell is "Your points so far" (G.check_all()); the explorer comes before it.
    summary_index = plain[-1]
    assert "G.check_all()" in nb.cells[summary_index].source
    demo_index = max(i for i in plain if "check_all" not in nb.cells[i].source)

    def drive() -> None:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(HANG_GUARD_MS)
            try:
                _solve_in_lab(page, url, token, nb, index, demo_index, summary_index)
            finally:
                shot = _artifacts() / "jupyterlab_04_positions.png"
                page.screenshot(path=str(shot), full_page=True)
                browser.close()

    # Playwright's sync API refuses to start in a thread whose asyncio loop is running, which
    # is the case when the book's browser tests ran first in this worker: use a thread of our own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(drive).result()


# JavaScript run in the page: true once Run All Cells has finished, successfully or not.
RUN_ALL_FINISHED = """(demoIndex) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  if (!panel) return false;
  const prompt = (cell) => (cell.querySelector('.jp-InputArea-prompt')?.textContent || '').trim();
  const cells = [...panel.querySelectorAll('.jp-Notebook .jp-Cell')];
  if (/^\\[\\d+\\]:$/.test(prompt(cells[demoIndex]))) return true;
  const idle = panel.querySelector(".jp-Notebook-ExecutionIndicator[data-status='idle']");
  const error = panel.querySelector(".jp-OutputArea-output[data-mime-type*='stderr']");
  return Boolean(idle && error) && !cells.some((c) => prompt(c) === '[*]:');
}"""


def _solve_in_lab(
    page, url: str, token: str, nb, index: dict, demo_index: int, summary_index: int
) -> None:
    """Open the notebook, type the solution, run all cells, and check what the student sees."""
    page.goto(f"{url}/lab/tree/{CHAPTER}.ipynb?token={token}")
    notebook = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
    notebook.wait_for()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for()
    cells = notebook.locator(".jp-Cell")

    # Replace the stub of every solution cell with a correct implementation (JupyterLab's
    # "Run All Cells" stops at the first failing cell, so the explorer needs all of them).
    for name, body in _solution_bodies().items():
        cells.nth(index[name]).locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(body)  # no auto-indent or auto-close: the text arrives as is

    # Run > Run All Cells
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

    demo, summary = cells.nth(demo_index), cells.nth(summary_index)
    # The run is over when the last code cell (the points so far) has its execution count, or
    # when the kernel is idle again with an error shown and nothing queued (Run All stops at an
    # error).
    page.wait_for_function(RUN_ALL_FINISHED, arg=summary_index, polling=500)
    if not re.fullmatch(r"\[\d+\]:", summary.locator(".jp-InputArea-prompt").inner_text().strip()):
        shown = notebook.locator(".jp-OutputArea-output[data-mime-type*='stderr']")
        errors = "\n".join(shown.nth(i).inner_text()[-1500:] for i in range(shown.count()))
        pytest.fail(f"Run All Cells stopped before the explorer:\n{errors}", pytrace=False)
    demo.locator(".widget-slider").first.wait_for()

    for gid in H.test_cells(nb):
        cell = cells.nth(index[gid])
        assert cell.locator("[data-mime-type='application/vnd.jupyter.stderr']").count() == 0, gid
        assert cell.locator(".jp-OutputArea").inner_text().strip() == "", gid  # silent = passed
        assert cell.locator(".jp-InputArea-prompt").inner_text().strip() not in ("[ ]:", "[*]:")

    assert demo.locator(".widget-slider").count() == 1
    demo.locator(".widget-output img").first.wait_for()
    # G.check_all() found this notebook from the kernel and ran its visible tests on the typed
    # solutions: every test listed, all passing.
    table = summary.locator(".jp-OutputArea").inner_text()
    assert "All visible tests pass." in table, table
    assert all(gid in table for gid in H.test_cells(nb)), table


def _artifacts() -> Path:
    path = H.REPO_ROOT / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


def test_the_typed_solutions_are_the_solution_bodies() -> None:
    bodies = _solution_bodies()
    assert set(bodies) == set(H.solution_cells(H.released(CHAPTER)))
    for name, body in bodies.items():
        assert "BEGIN SOLUTION" not in body and "NotImplementedError" not in body
        compile(body, name, "exec")
