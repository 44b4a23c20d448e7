"""The pieces of ``make bench`` on tiny sizes: statistics, ordering, tables, skips, files.

No timed assertions: only what the runner computes from given numbers, the order it runs
things in, and the shape of what it writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import book_build  # noqa: E402
import check_latency  # noqa: E402
import reference_vs_torch  # noqa: E402
import run  # noqa: E402


def table_lines(text: str) -> list[list[str]]:
    """The cells of every markdown table row in ``text``."""
    return [
        [c.strip() for c in line.strip().strip("|").split(" | ")]
        for line in text.splitlines()
        if line.startswith("| ")
    ]


def assert_well_formed(table: str) -> None:
    lines = table.splitlines()
    assert lines[1].startswith("|---"), "second line must be the header separator"
    widths = {len(cells) for cells in table_lines(table)}
    assert len(widths) == 1, f"rows with different numbers of cells: {widths}"


# --- statistics and ordering ---------------------------------------------------------------------


def test_summarize_median_and_iqr():
    s = run.summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0  # the outlier does not move the median
    assert s["q25"] == 2.0 and s["q75"] == 4.0 and s["iqr"] == 2.0 and s["n"] == 5
    with pytest.raises(ValueError, match="no samples"):
        run.summarize([])


def test_ratios_are_paired_round_by_round():
    # Round 2 was slow for both: paired ratios are [2, 2, 0.5]; the ratio of medians is 3 / 6.
    a, b = [2.0, 30.0, 3.0], [1.0, 15.0, 6.0]
    assert run.paired_ratios(a, b) == [2.0, 2.0, 0.5]
    with pytest.raises(ValueError, match="one sample per round"):
        run.paired_ratios([1.0], [1.0, 2.0])


def test_interleaved_rotates_so_each_contender_takes_each_place():
    orders = run.interleaved(3, ["A", "B", "C"])
    assert orders == [["A", "B", "C"], ["B", "C", "A"], ["C", "A", "B"]]
    for place in range(3):
        assert {o[place] for o in orders} == {"A", "B", "C"}


def test_reference_rounds_alternate_the_two_contenders():
    calls: list[str] = []
    samples = reference_vs_torch._rounds(
        {"A": (lambda: calls.append("A"), ()), "B": (lambda: calls.append("B"), ())},
        n_rounds=2,
        calls=1,
    )
    # an untimed pass each, then per sample 1 warm-up + 1 timed call: A B, then B A
    assert calls == ["A", "B"] + ["A"] * 2 + ["B"] * 2 + ["B"] * 2 + ["A"] * 2
    assert [len(v) for v in samples.values()] == [2, 2]


# --- tables and the results file ------------------------------------------------------------------


def test_section_table_ratio_and_per_notebook_columns():
    section = {
        "rows": [
            {"label": "bare", "samples": [1.0, 10.0, 2.0], "count": 1},
            {
                "label": "grader",
                "samples": [6.0, 60.0, 2.0],
                "count": 2,
                "baseline": "bare",
                "vs": "bare",
            },
        ]
    }
    table = run.section_table(section)
    assert_well_formed(table)
    header, grader = table_lines(table)[0], table_lines(table)[2]
    assert header[4:6] == ["per notebook", "notebooks/min"]
    assert grader[4] == "3 s" and grader[5] == "20.0"  # median of 3, 30, 1 s per notebook
    # per notebook and per round: 3/1, 30/10, 1/2 (the ratio of medians would be 3/2)
    assert grader[6].startswith("3.00× (1.75–3.00) vs bare")


def test_section_table_names_a_missing_baseline():
    section = {"rows": [{"label": "x", "samples": [1.0], "baseline": "nope"}]}
    with pytest.raises(ValueError, match="missing baseline 'nope'"):
        run.section_table(section)


def test_fmt_seconds_picks_a_readable_unit():
    assert run.fmt_seconds(0.000123) == "123 µs"
    assert run.fmt_seconds(0.0456) == "45.6 ms"
    assert run.fmt_seconds(2.5) == "2.5 s"
    assert run.fmt_seconds(750.0) == "750 s"


def test_parse_only_rejects_unknown_pieces():
    assert run.parse_only("gpu, book") == ["book", "gpu"]  # always in the documented order
    with pytest.raises(Exception, match="choose a comma list"):
        run.parse_only("book,speed")


def test_main_writes_results_and_skips_gpu_cleanly(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(run, "RECORDED_GPU", tmp_path / "no-record.json")

    def broken(**kwargs):
        raise FileNotFoundError("no exercises/ folder")

    monkeypatch.setattr(check_latency, "measure", broken)
    out = tmp_path / "results.md"
    status = run.main(["--only", "gpu,check", "--out", str(out), "--device", "cuda"])
    assert status == 0
    text = out.read_text()
    assert text.startswith("# Benchmark results")
    for key in ("nproc", "CPU", "torch threads", "load average at start", torch.__version__):
        assert key in text
    assert "not measured: no GPU lent to this run" in text
    # a piece that fails is recorded, and the run goes on
    assert "not measured: FileNotFoundError: no exercises/ folder" in text
    assert text.index("3. Student check latency") < text.index("5. Attention on a GPU")
    assert not out.with_suffix(".png").exists()  # nothing measured, nothing plotted
    machine = text.split("## Machine")[1].split("##")[0].strip()
    assert_well_formed(machine)


def test_main_exits_1_when_a_requirement_fails(tmp_path, monkeypatch):
    def rebuilt(**kwargs):
        return {
            "rows": [{"label": "warm", "samples": [1.0, 2.0]}],
            "checks": [(False, "warm builds re-executed 3 notebook(s)")],
        }

    monkeypatch.setattr(book_build, "measure", rebuilt)
    out = tmp_path / "r.md"
    assert run.main(["--only", "book", "--out", str(out)]) == 1
    text = out.read_text()
    assert "- FAIL: warm builds re-executed 3 notebook(s)" in text
    assert_well_formed(text.split("## 1. Book build")[1].strip())


# --- reference code against torch ----------------------------------------------------------------


def test_attention_scaling_on_tiny_sizes_fits_and_plots(tmp_path):
    result = reference_vs_torch.attention_scaling(
        [8, 16, 32], (1, 2, 4), device="cpu", n_rounds=2, calls=1
    )
    assert [r["label"] for r in result["rows"][:2]] == [
        "attention T=8: F.scaled_dot_product_attention",
        "attention T=8: course_lib",
    ]
    assert result["rows"][1]["baseline"] == result["rows"][0]["label"]
    assert all(len(v) == 3 for v in result["medians"].values())
    assert set(result["fits"]) == {"course_lib", "F.scaled_dot_product_attention"}
    section = {
        "series": {
            "sizes": [8, 16, 32],
            "times": result["medians"],
            "fit": result["fits"]["course_lib"],
        }
    }
    png = tmp_path / "plot.png"
    gpu = {**section, "key": "gpu"}
    assert run.write_plots([{"rows": []}, {**section, "key": "reference"}, gpu], png) == [
        "plot.png",
        "plot-gpu.png",
    ]
    for name in ("plot.png", "plot-gpu.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_modules_are_checked_equal_before_timing(monkeypatch):
    rows = reference_vs_torch.module_rows([(1, 4, 8, 2)], device="cpu", n_rounds=1, calls=1)
    assert [r["label"].split(": ")[1] for r in rows] == [
        "nn.MultiheadAttention",
        "course_lib",
        "nn.TransformerEncoderLayer",
        "course_lib",
    ]
    with pytest.raises(AssertionError, match="disagree"):
        reference_vs_torch._same(torch.zeros(2), torch.ones(2), "x")


def test_gpu_piece_skips_without_cuda_and_runs_on_another_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    skipped = reference_vs_torch.measure_gpu(device="cuda", quick=True, log=lambda m: None)
    assert skipped["status"].startswith("not measured: no GPU lent to this run")
    assert skipped["rows"] == []
    # the same code path on the CPU (what `--device cuda` runs on a GPU), tiny sizes
    monkeypatch.setitem(reference_vs_torch.ATTENTION_T, "quick", [4, 8])
    ran = reference_vs_torch.measure_gpu(device="cpu", quick=True, log=lambda m: None)
    assert ran["status"] == "measured" and ran["facts"][0].startswith("device: cpu")
    labels = [r["label"] for r in ran["rows"]]
    assert len([x for x in labels if "bf16" in x]) == 2  # half precision, ours and SDPA
    assert any(x.startswith("encoder layer") for x in labels)
    assert len(labels) == 4 + 2 + 4
    assert not any("not measured" in f for f in ran["facts"])


def test_a_gpu_record_from_a_lent_machine_stands_in_for_a_missing_gpu(tmp_path, monkeypatch):
    """Where a GPU was lent once, `--json` kept its section; a run without one shows it,
    marked with the device, date and commit it came from, and plots it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    record = tmp_path / "gpu_recorded.json"
    section = {
        "key": "gpu",
        "title": "5. Attention on a GPU",
        "status": "measured",
        "rows": [
            {"label": "attention T=8: SDPA", "samples": [1e-5, 2e-5], "baseline": None},
            {
                "label": "attention T=8: course_lib",
                "samples": [4e-5, 6e-5],
                "baseline": "attention T=8: SDPA",
                "vs": "SDPA",
            },
        ],
        "facts": ["device: NVIDIA H100 80GB HBM3 (torch 2.11.0+cu130)"],
        "series": {"sizes": [8, 16], "times": {"a": [1e-5, 4e-5]}, "fit": [2.0, 1e-7]},
    }
    machine = {"GPU": "NVIDIA H100 80GB HBM3", "torch": "2.11.0", "date (UTC)": "2026-11-26"}
    record.write_text(
        json.dumps(
            {
                "command": "python benchmarks/run.py --only gpu",
                "machine": machine,
                "sections": [section],
            }
        )
    )
    monkeypatch.setattr(run, "RECORDED_GPU", record)
    out = tmp_path / "results.md"
    assert run.main(["--only", "gpu", "--out", str(out), "--json", str(tmp_path / "r.json")]) == 0
    text = out.read_text()
    gpu = text.split("## 5. Attention on a GPU")[1]
    assert "Recorded on a lent GPU machine (NVIDIA H100 80GB HBM3" in gpu
    assert "not from this run" in gpu and "here: not measured: no GPU lent" in gpu
    assert "3.50× (3.25–3.75) vs SDPA" in gpu  # the recorded ratios (4 and 3), median and IQR
    assert (tmp_path / "results.png").exists()
    dumped = json.loads((tmp_path / "r.json").read_text())
    assert dumped["sections"][0]["key"] == "gpu" and "machine" in dumped
    # a quick run never borrows the record
    assert run.main(["--only", "gpu", "--quick", "--out", str(out)]) == 0
    assert "Recorded on" not in out.read_text()
    # nor does a record that was itself not measured
    record.write_text(json.dumps({"sections": [{**section, "status": "not measured: x"}]}))
    assert run.recorded_gpu_section(record) is None


# --- book build and check latency ----------------------------------------------------------------


def test_copy_inputs_leaves_out_build_outputs(tmp_path):
    src, dest = tmp_path / "repo", tmp_path / "copy"
    for rel in (
        "book/intro.md",
        "book/exercises/01.ipynb",
        "book/_build/x",
        "_config.yml",
        "course_lib/__init__.py",
        "course_lib/__pycache__/a.pyc",
        "exercises/01_tensors/01_tensors.ipynb",
        "_build/.jupyter_cache/db",
        "benchmarks/results.md",
        "benchmarks/run.py",
    ):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("x")
    # A page that includes a benchmark table: the table is an input of the build too.
    (src / "book/appendix").mkdir()
    (src / "book/appendix/scale.md").write_text("```{include} ../../benchmarks/results.md\n```\n")
    dest.mkdir()
    book_build.copy_inputs(dest, root=src)
    copied = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert copied == [
        "_config.yml",
        "benchmarks/results.md",
        "book/appendix/scale.md",
        "book/intro.md",
        "course_lib/__init__.py",
        "exercises/01_tensors/01_tensors.ipynb",
    ]
    (src / "_config.yml").unlink()
    with pytest.raises(FileNotFoundError, match="_config.yml is missing"):
        book_build.copy_inputs(tmp_path / "again", root=src)


def test_quick_chapters_keep_every_chapter_the_intro_links(tmp_path):
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text(
        "| 1 | {doc}`01_tensors` |\n| 3 | {doc}`the third <03_embeddings>` |\n| 2 | Tokens |\n"
    )
    ready = ["01_tensors", "02_tokenization", "03_embeddings", "04_positions"]
    assert book_build.quick_chapters(ready, root=tmp_path) == ["01_tensors", "03_embeddings"]


def test_run_build_counts_executed_and_cached_notebooks(tmp_path):
    fake = tmp_path / "fake_build.py"
    fake.write_text(
        "import sys\n"
        "print('a.md: Executing notebook using local CWD [mystnb]')\n"
        "print('b.md: Using cached notebook: ID=3 [mystnb]', file=sys.stderr)\n"
        "print('c.md: Executing notebook using local CWD [mystnb]')\n"
        "sys.exit(1 if '--force' in sys.argv else 0)\n"
    )
    result = book_build.run_build(tmp_path, ["01_tensors"], program=[sys.executable, str(fake)])
    assert (result["executed"], result["cached"], result["new_records"]) == (2, 1, 0)
    with pytest.raises(RuntimeError, match=r"failed \(exit 1\)"):
        book_build.run_build(
            tmp_path, ["01_tensors"], force=True, program=[sys.executable, str(fake)]
        )


def test_time_check_accepts_failing_tests_but_not_misuse(tmp_path):
    nb = tmp_path / "n.ipynb"
    nb.write_text("{}")
    fake = tmp_path / "course.py"
    fake.write_text("import sys\nsys.exit(int(open(sys.argv[2]).read() == '{}'))\n")
    seconds, status = check_latency.time_check(nb, [sys.executable, str(fake)])
    assert status == 1 and seconds > 0
    fake.write_text("import sys\nprint('usage', file=sys.stderr)\nsys.exit(2)\n")
    with pytest.raises(RuntimeError, match="exited 2"):
        check_latency.time_check(nb, [sys.executable, str(fake)])


# --- grading throughput ----------------------------------------------------------------------


@pytest.mark.slow
def test_grading_piece_times_every_contender_on_real_notebooks(monkeypatch):
    """The quick grading piece end to end: nbgrader, `course grade` with 1 and 2 jobs and bare
    nbclient each graded real submissions (a contender that failed would raise), and the rows
    name the right baselines. Times are only checked to exist, never compared."""
    monkeypatch.setitem(run.GRADING_EFFORT, "quick", (2, 1, 2, 1))
    section = run.measure_grading(quick=True, log=lambda m: None)
    labels = [r["label"] for r in section["rows"]]
    for workload in ("2 × 05_attention", "course (2 notebooks)"):
        for contender in (run.BARE, run.NBGRADER, run.JOBS1, run.JOBS2):
            assert f"{workload}: {contender}" in labels
    for row in section["rows"]:
        assert len(row["samples"]) == 1 and row["samples"][0] > 0
        if row["label"].endswith(run.JOBS2):
            assert row["baseline"].endswith(run.NBGRADER)
    assert "speed-up of --jobs 2 over --jobs 1" in section["facts"][0]
    table = run.section_table(section)
    assert_well_formed(table)


def test_grading_piece_checks_the_throughput_requirement(monkeypatch):
    """A full run states whether `--jobs 2` reaches 5x serial nbgrader, from the per-round
    ratios; fake timings stand in for the grading (nothing is graded here)."""
    import grading_throughput

    monkeypatch.setattr(grading_throughput, "make_submissions", _fake_submissions)
    monkeypatch.setattr(check_latency, "assignments", lambda: ["05_attention"])
    monkeypatch.setattr(check_latency, "finished_notebook", lambda aid, d: d / f"{aid}.ipynb")
    monkeypatch.setitem(run.GRADING_EFFORT, "full", (4, 2, 1, 1))
    for nbgrader, jobs2, ok in ((30.0, 5.0, True), (30.0, 6.5, False)):
        timings = {run.NBGRADER: nbgrader, run.JOBS1: 8.0, run.JOBS2: jobs2, run.BARE: 1.0}
        monkeypatch.setattr(
            run,
            "_grade_rounds",
            lambda rounds, work, log, t=timings: {k: [v] * len(rounds) for k, v in t.items()},
        )
        section = run.measure_grading(quick=False, log=lambda m: None)
        [(passed, text)] = section["checks"]
        assert passed is ok
        assert f"{nbgrader / jobs2:.2f}× as many submissions per minute" in text


def _fake_submissions(assignment, n, dest):
    for i in range(n):
        folder = dest / f"student{i:03d}" / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text("{}")
