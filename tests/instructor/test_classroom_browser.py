"""report.html's class table sorts in a real browser, opened from the file (no server)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from course_lib.instructor import classroom

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _result(sid: str, score: float) -> dict:
    return {
        "student_id": sid,
        "assignment_id": "05_attention",
        "score": score,
        "max_score": 10.0,
        "status": "graded",
        "status_text": "graded",
        "flags": [],
        "cells": [],
    }


def test_clicking_a_heading_sorts_the_class_table(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium", pytrace=False)
    results = [_result("s01", 7.0), _result("s02", 10.0), _result("s03", 2.5), _result("s04", 9)]
    rows = classroom.class_rows(results, classroom.ClassOptions())
    page_html = "<!DOCTYPE html><html><body><h1>Grading report</h1></body></html>"
    classroom.write_class_outputs(tmp_path, rows, page_html)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--host-resolver-rules=MAP * ~NOTFOUND", "--no-sandbox"],
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto((tmp_path / "report.html").as_uri())
            ids = "#class-table tbody tr td:first-child"
            assert page.locator(ids).all_inner_texts() == ["s01", "s02", "s03", "s04"]
            page.locator("#class-table th", has_text="score").first.click()
            assert page.locator(ids).all_inner_texts() == ["s03", "s01", "s04", "s02"]
            page.locator("#class-table th", has_text="score").first.click()
            assert page.locator(ids).all_inner_texts() == ["s02", "s04", "s01", "s03"]
            page.locator("#class-table th", has_text="student").first.click()
            assert page.locator(ids).all_inner_texts() == ["s01", "s02", "s03", "s04"]
            assert errors == []
        finally:
            browser.close()
