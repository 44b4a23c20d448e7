"""`course check` runs a notebook and prints a per-test table; `course release` validates ids."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import notebook_harness as H
import pytest

from course_lib import cli
from course_lib.authoring import release

CHAPTER = "04_positions"  # small and quick to run


def _course(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "course_lib.cli", *args],
        cwd=cwd,
        env=H._env(),
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_parser_has_release_and_check() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["release"]).ids == []
    assert parser.parse_args(["release", "05_attention"]).ids == ["05_attention"]
    assert parser.parse_args(["check", "x.ipynb"]).notebook == Path("x.ipynb")
    with pytest.raises(SystemExit):
        parser.parse_args([])


def test_release_rejects_an_unknown_id(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["release", "99_nothing", "--root", str(H.REPO_ROOT)]) == 2
    err = capsys.readouterr().err
    assert "unknown assignment 99_nothing" in err and "05_attention" in err


def test_check_rejects_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["check", str(tmp_path / "nope.ipynb")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_course_root_is_found_from_a_subfolder() -> None:
    assert release.course_root(H.REPO_ROOT / "exercises") == H.REPO_ROOT


@pytest.mark.slow
@pytest.mark.xdist_group("check_cli")
def test_check_blank_then_solved(tmp_path: Path) -> None:
    blank = tmp_path / f"{CHAPTER}.ipynb"
    nbformat.write(H.released(CHAPTER), blank)
    proc = _course("check", str(blank), cwd=tmp_path)
    table = proc.stdout
    assert proc.returncode == 1, table + proc.stderr
    tests = list(H.test_cells(H.released(CHAPTER)))
    for gid in tests:
        assert gid in table
    assert "0 / 4  failed: sinusoidal_positional_encoding is not implemented yet" in table
    assert "total" in table and "Some tests fail" in table
    # no Jupyter kernel, no noise: nothing on stderr
    assert proc.stderr == "", proc.stderr

    solved = tmp_path / "solved.ipynb"
    nb = H.fill(CHAPTER)
    nb.cells[0].source += "\n"  # markdown edits are fine
    nbformat.write(nb, solved)
    proc = _course("check", str(solved), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    points = sum(c.metadata.nbgrader.points for c in H.test_cells(nb).values())
    assert f"{points} / {points}" in proc.stdout
    assert "failed" not in proc.stdout and "All visible tests pass" in proc.stdout
    # the notebook's own G.check_all() cell is not run: one table, no note about it
    assert proc.stdout.count("  total") == 1 and "Note:" not in proc.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("check_cli")
def test_check_reports_one_broken_function(tmp_path: Path) -> None:
    wrong = (
        "def relative_positions(T, max_distance):\n"
        "    pos = torch.arange(T)\n"
        "    return (pos[:, None] - pos[None, :]).clamp(-max_distance, max_distance) + max_distance\n"
    )
    path = tmp_path / "one_wrong.ipynb"
    nbformat.write(H.fill(CHAPTER, {"relative_positions": wrong}), path)
    proc = _course("check", str(path), cwd=tmp_path)
    assert proc.returncode == 1
    rows = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.startswith("  test_")}
    assert "passed" in rows["test_sinusoidal_positional_encoding"]
    assert "failed" in rows["test_relative_positions"]
    assert "0 / 4" in rows["test_relative_positions"]
    # the full message, every line of it, is printed under the table
    tail = proc.stdout.split("test_relative_positions:\n", 1)[1]
    assert "Likely cause" in tail or len(tail.splitlines()) > 2, proc.stdout


@pytest.mark.slow
@pytest.mark.xdist_group("check_cli")
def test_check_reports_a_broken_cell_at_that_cell_and_ignores_edited_tests(
    tmp_path: Path,
) -> None:
    broken = "def relative_positions(T, max_distance)\n    return None\n"
    nb = H.fill(CHAPTER, {"relative_positions": broken})
    test = H.test_cells(nb)["test_sinusoidal_positional_encoding"]
    test.source = "assert False, 'my edit'\n"  # an edited test cell: the original runs
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    proc = _course("check", str(path), cwd=tmp_path)
    assert proc.returncode == 1
    rows = {ln.split()[0]: ln for ln in proc.stdout.splitlines() if ln.startswith("  test_")}
    assert (
        "not run: your cell `relative_positions` raised an error" in rows["test_relative_positions"]
    )
    assert "SyntaxError" in proc.stdout and "line 1" in proc.stdout
    assert "NameError" not in proc.stdout
    assert "passed" in rows["test_sinusoidal_positional_encoding"]
    assert "you changed the test cell(s) test_sinusoidal_positional_encoding" in proc.stdout
    assert proc.stderr == "", proc.stderr


def test_the_command_skips_the_iri_grammar_but_still_validates_notebooks() -> None:
    """`course` keeps jsonschema from compiling rfc3987_syntax's grammar (1.5 s a start), and
    nbformat, which uses no format checker, still rejects a broken notebook in that process."""
    code = (
        "import sys, course_lib.cli, nbformat\n"
        "print('loaded' if sys.modules.get('rfc3987_syntax') else 'skipped')\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1')])\n"
        "nbformat.validate(nb)\n"
        "del nb['cells'][0]['source']\n"
        "try:\n"
        "    nbformat.validate(nb)\n"
        "except nbformat.ValidationError:\n"
        "    print('rejected')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["skipped", "rejected"]


@pytest.mark.slow
@pytest.mark.xdist_group("check_cli")
def test_check_all_in_the_notebook_agrees_with_course_check(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    wrong = (
        "def relative_positions(T, max_distance):\n"
        "    pos = torch.arange(T)\n"
        "    return (pos[:, None] - pos[None, :]).clamp(-max_distance, max_distance) + max_distance\n"
    )
    nb = H.fill(CHAPTER, {"relative_positions": wrong})
    path = tmp_path / f"{CHAPTER}.ipynb"
    nbformat.write(nb, path)
    proc = _course("check", str(path), cwd=tmp_path)

    def table(text: str) -> dict[str, tuple[str, str]]:
        rows = [ln.split() for ln in text.splitlines() if ln.startswith(("  test_", "  total"))]
        return {r[0]: (r[1], r[3]) for r in rows}  # points got, points possible

    expected = table(proc.stdout)
    assert expected["test_relative_positions"] == ("0", "4")
    # The student's kernel: every cell but the tests run top to bottom, then the last cell.
    kernel: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("grade"):
            try:
                exec(compile(cell.source, "<cell>", "exec"), kernel)
            except Exception:  # noqa: BLE001, S110 - a demo cell may need a front end
                pass
    capsys.readouterr()
    exec(
        "from course_lib import grading as G\nok = G.check_all(NOTEBOOK)\n",
        kernel | {"NOTEBOOK": str(path)},
    )
    out = capsys.readouterr().out
    assert table(out) == expected, out
    assert "test_relative_positions:\n" in out and "Some tests fail" in out


# ---------------------------------------------------------------------------------------------
# "Your points so far": the G.check_all() cell of every notebook, and what grading does with it.
# ---------------------------------------------------------------------------------------------

SUMMARY_CELL = "from course_lib import grading as G\n\nG.check_all()"


def _summary_cells(nb: nbformat.NotebookNode) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "check_all" in c.source]


def test_every_notebook_ends_with_the_same_points_so_far_cell() -> None:
    """One plain (ungraded) ``G.check_all()`` cell per release, after the same markdown cell in
    every chapter (so the Chinese edition shares its translation), before the written questions
    and mentioned in the recap at the top."""
    explanations = set()
    for chapter in H.chapters():
        nb = H.released(chapter)
        (index,) = _summary_cells(nb)
        cell = nb.cells[index]
        assert cell.source == SUMMARY_CELL and "nbgrader" not in cell.metadata, chapter
        heading = nb.cells[index - 1]
        assert heading.cell_type == "markdown"
        assert heading.source.startswith("## Your points so far\n"), chapter
        explanations.add(heading.source)
        assert nb.cells[index + 1].source.startswith("## Written questions"), chapter
        assert "`G.check_all()` cell near the end" in nb.cells[0].source, chapter
    assert len(explanations) == 1, explanations
    assert "hidden tests run only when your work is graded" in " ".join(explanations.pop().split())


def test_the_summary_cell_is_never_run_by_the_grader_unless_edited(tmp_path: Path) -> None:
    """The unchanged cell is recognised as the source's own demo cell and skipped (not one of
    the student's cells, no flag, no note); edited, it is a cell of the student's and runs."""
    from course_lib.instructor import notebooks as nbk

    source = nbk.load_source(H.SOLUTIONS / CHAPTER / f"{CHAPTER}.ipynb", CHAPTER)
    nb = H.fill(CHAPTER)
    path = tmp_path / f"{CHAPTER}.ipynb"
    nbformat.write(nb, path)
    ex = nbk.extract(path, source)
    assert ex.added == [] and ex.flags == [] and ex.missing == []
    assert not any("check_all" in c["source"] for c in nbk.worker_chunks(source, ex))

    (index,) = _summary_cells(nb)
    nb.cells[index].source = SUMMARY_CELL.replace("()", f"({CHAPTER + '.ipynb'!r})")
    nbformat.write(nb, path)
    ex = nbk.extract(path, source)
    assert [code for _, code in ex.added] == [nb.cells[index].source]
    assert ex.flags == []


def test_check_all_returns_at_once_while_nbgrader_grades(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Under ``nbgrader autograde``/``validate`` (``$NBGRADER_EXECUTION``) and in the student's
    process of ``course grade``/``course check`` the cell prints one line and reads nothing."""
    from course_lib.grading import summary

    def no_reading(*_args: object) -> None:
        raise AssertionError("check_all looked for the notebook while it was being graded")

    monkeypatch.setattr(summary, "find_notebook", no_reading)
    for mode in ("autograde", "validate"):
        monkeypatch.setenv("NBGRADER_EXECUTION", mode)
        assert summary.check_all() is None
        assert capsys.readouterr().out == summary.GRADING_MESSAGE + "\n"
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.setattr(summary, "GRADER_PROCESS", True)
    assert summary.check_all("05_attention.ipynb") is None
    assert capsys.readouterr().out == summary.GRADING_MESSAGE + "\n"
    monkeypatch.setattr(summary, "GRADER_PROCESS", False)
    with pytest.raises(AssertionError, match="looked for the notebook"):
        summary.check_all()  # in the student's own kernel it does look


@pytest.mark.slow
@pytest.mark.xdist_group("check_cli")
def test_an_edited_summary_cell_costs_nothing_under_course_check(tmp_path: Path) -> None:
    """Edited (a path given), the cell is the student's own and runs in their process while
    ``course check`` loads it: there check_all returns None at once (a run of the tests would
    return True or False, and the assert would fail the cell), and the table appears once."""
    nb = H.fill(CHAPTER)
    path = tmp_path / f"{CHAPTER}.ipynb"
    (index,) = _summary_cells(nb)
    nb.cells[
        index
    ].source = f"from course_lib import grading as G\n\nok = G.check_all({str(path)!r})\nassert ok is None\n"
    nbformat.write(nb, path)
    proc = _course("check", str(path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    points = sum(c.metadata.nbgrader.points for c in H.test_cells(nb).values())
    assert f"{points} / {points}" in proc.stdout and "raised" not in proc.stdout
    assert proc.stdout.count("  total") == 1 and "All visible tests pass" in proc.stdout
