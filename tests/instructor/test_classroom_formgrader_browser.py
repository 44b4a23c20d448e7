"""A TA grades the written answers in nbgrader's formgrader, in a real browser, and the marks come
back: ``course grade`` grades a class of two (chapter 05), a Jupyter server with nbgrader's
formgrader extension serves the gradebook it wrote, headless Chromium opens one submission's
manual-grading view and types a score into each written cell, and the next ``course grade``
counts them in grades.csv and leaves them in the gradebook.

Every wait is for an event (the server answers, formgrader's save request returns);
HANG_GUARD_S only ends a run that will never finish.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "classroom"))

from written_class import A, course, rows, submission  # noqa: E402

from course_lib.instructor.export import _gradebook  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.xdist_group("formgrader")]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HANG_GUARD_S = 10 * 60
TA_MARKS = {"written_scale": "2", "written_empty_row": "0.5"}  # s01's two written cells


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_formgrader(nbg: Path, home: Path) -> tuple[subprocess.Popen, str, str]:
    """A Jupyter server on 127.0.0.1 in the nbgrader course folder ``nbg`` (its
    nbgrader_config.py names the gradebook); returns (process, url, token) once it answers."""
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / ".jupyter"), HOME=str(home))
    env["JUPYTER_RUNTIME_DIR"] = str(home / "runtime")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    (home / ".jupyter").mkdir(parents=True, exist_ok=True)
    (home / ".jupyter" / "jupyter_server_config.json").write_text(
        json.dumps(
            {"ServerApp": {"jpserver_extensions": {"nbgrader.server_extensions.formgrader": True}}}
        )
    )
    log = open(home / "server.log", "w")  # noqa: SIM115 - closed with the process below
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "server",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            "--allow-root",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={nbg}",
        ],
        cwd=nbg,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + HANG_GUARD_S
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=30)
            return server, url, token
        except OSError:
            if server.poll() is not None:
                pytest.fail(
                    f"jupyter server exited with {server.returncode}:\n"
                    + (home / "server.log").read_text()[-3000:],
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                server.kill()
                pytest.fail("jupyter server never answered (hang guard)", pytrace=False)
            time.sleep(0.5)


def _grade_in_formgrader(url: str, token: str, submission_id: str) -> list[int]:
    """Open the submission in formgrader, type each written cell's mark and let formgrader save
    it (its ``change`` handler PUTs the grade); returns the status of every save."""
    from playwright.sync_api import sync_playwright

    statuses = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            # The token logs the browser in, on every request (formgrader's API calls too).
            page = browser.new_page(extra_http_headers={"Authorization": f"token {token}"})
            page.set_default_timeout(HANG_GUARD_S * 1000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            # formgrader's own page for one submission (Manual Grading > assignment > student).
            page.goto(f"{url}/formgrader/submissions/{submission_id}/")
            for gid, points in TA_MARKS.items():
                box = page.locator(f"input.score#{gid}")
                box.wait_for(state="visible")
                with page.expect_response(
                    lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT"
                ) as saved:
                    box.fill(points)
                    box.press("Tab")  # leaving the field fires `change`: formgrader saves
                statuses.append(saved.value.status)
            # formgrader's page loads MathJax from a CDN, which a machine offline cannot reach.
            assert [e for e in errors if "MathJax is not defined" not in e] == []
        finally:
            browser.close()
    return statuses


def test_marks_typed_in_formgrader_reach_grades_csv_and_survive_a_regrade(
    tmp_path: Path,
) -> None:
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium", pytrace=False)
    for sid in ("s01", "s02"):
        folder = tmp_path / "submitted" / sid / A
        folder.mkdir(parents=True)
        (folder / f"{A}.ipynb").write_text(json.dumps(submission(sid)))
    args = ["grade", "submitted", "--out", "out", "--source", str(ROOT / "solutions")]
    args += ["--jobs", "2", "--timeout", "20"]
    first = course(tmp_path, *args)
    assert first.returncode == 0, first.stderr
    before = rows(tmp_path / "out")
    assert before["s01"]["manual_score"] == "" and "written_ungraded" in before["s01"]["flags"]

    # nbgrader's course folder: the config names our gradebook; formgrader shows the notebook
    # in autograded/<student>/<assignment>/ next to the grades.
    db = f"sqlite:///{(tmp_path / 'out' / 'gradebook.db').resolve()}"
    nbg = tmp_path / "nbgrader"
    (nbg / "autograded" / "s01" / A).mkdir(parents=True)
    shutil.copy(tmp_path / "submitted" / "s01" / A / f"{A}.ipynb", nbg / "autograded" / "s01" / A)
    (nbg / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.db_url = {db!r}\nc.CourseDirectory.root = {str(nbg)!r}\n"
    )
    with _gradebook(db) as gb:
        submission_id = gb.find_submission_notebook(A, A, "s01").id
    server, url, token = _start_formgrader(nbg, tmp_path / "home")
    try:
        # Playwright's sync API needs a thread without a running asyncio loop.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            statuses = pool.submit(_grade_in_formgrader, url, token, submission_id).result()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    assert statuses == [200, 200]
    with _gradebook(db) as gb:
        typed = {g: gb.find_grade(g, A, A, "s01").manual_score for g in TA_MARKS}
    assert typed == {"written_scale": 2.0, "written_empty_row": 0.5}

    again = course(tmp_path, *args)
    assert again.returncode == 0, again.stderr
    after = rows(tmp_path / "out")
    assert after["s01"]["manual_score"] == "2.5"
    assert after["s01"]["raw_score"] == f"{float(before['s01']['auto_score']) + 2.5:g}"
    assert "written_ungraded" not in after["s01"]["flags"]
    for sid in ("s01", "s02"):  # the engine's points are the same
        assert after[sid]["auto_score"] == before[sid]["auto_score"] == "10"
    assert after["s02"]["manual_score"] == "" and "written_ungraded" in after["s02"]["flags"]
    with _gradebook(db) as gb:
        kept = {g: gb.find_grade(g, A, A, "s01").manual_score for g in TA_MARKS}
        assert kept == typed
        s01 = gb.find_submission(A, "s01")
        assert (s01.score, s01.max_score, s01.needs_manual_grade) == (12.5, 13, False)
        assert gb.find_submission(A, "s02").needs_manual_grade
    # The marks come back in the sheet as well, and a sheet may not overwrite them.
    sheet = tmp_path / "out" / "manual" / f"{A}.csv"
    text = sheet.read_text()
    assert "s01,05_attention,written_scale,2,2," in text
    (tmp_path / "regrade.csv").write_text(text.replace("written_scale,2,2,", "written_scale,2,1,"))
    refused = course(tmp_path, *args, "--manual", "regrade.csv")
    assert refused.returncode == 2
    assert "marked 1 here but 2 in formgrader" in refused.stderr
    assert rows(tmp_path / "out") == after
