"""How long ``make book`` makes a reader wait: cold (empty cache) and warm (nothing changed).

The user's own build folder and jupyter cache are never touched: each cold build runs in a
fresh temporary copy of the inputs (``book/``, ``_config.yml``, ``course_lib/``,
``exercises/``), where ``python -m course_lib.authoring.bookbuild`` (what ``make book`` runs) finds its
repository root, because it locates everything relative to its own file and ``PYTHONPATH``
puts the copy's ``course_lib`` first (the chapters' kernels inherit it, so they import the copy).

Per copy: one cold build, then warm builds alternating two kinds, each of which must execute no
notebook:

- ``make book`` again: the input stamp matches, so nothing runs at all;
- ``bookbuild --force``: jupyter-book runs, Sphinx finds nothing out of date, and a re-read page
  would take its outputs from jupyter-cache.

Executions are counted from myst-nb's log lines ("Executing notebook" vs "Using cached
notebook") and from the number of jupyter-cache records before and after::

    .venv/bin/python benchmarks/book_build.py --quick      # the chapters intro.md links
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("book", "_config.yml", "course_lib", "exercises")
EXECUTED = "Executing notebook using"
CACHED = "Using cached notebook"
ZH_STAMP = "_build/html/zh/.bookbuild-stamp.json"  # the Chinese edition: its own build time
# (cold builds, warm `make book` per cold one, warm `--force` per cold one)
EFFORT = {"full": (2, 3, 1), "quick": (1, 1, 1)}


def available_chapters(root: Path = ROOT) -> tuple[list[str], list[str]]:
    """(chapters that can be built, chapters left out with the reason).

    ``make book`` needs the released notebook of every chapter it builds; until all are
    released the benchmark builds the ones that are, and says which it left out.
    """
    from course_lib.authoring.bookbuild import CHAPTERS

    ready, missing = [], []
    for cid in CHAPTERS:
        if not (root / "book" / f"{cid}.md").is_file():
            missing.append(f"{cid} (no book/{cid}.md)")
        elif not (root / "exercises" / cid / f"{cid}.ipynb").is_file():
            missing.append(f"{cid} (no exercises/{cid}/{cid}.ipynb)")
        else:
            ready.append(cid)
    return ready, missing


def quick_chapters(ready: Sequence[str], root: Path = ROOT) -> list[str]:
    """The smallest buildable subset: the first chapter and every chapter ``intro.md`` links.

    A partial build keeps intro.md, and with ``-W`` a link to a left-out chapter is an error.
    """
    intro = (root / "book" / "intro.md").read_text(encoding="utf-8")
    linked = {cid for cid in ready if re.search(r"\{doc\}`(?:[^`<]*<)?" + cid + r">?`", intro)}
    return [cid for i, cid in enumerate(ready) if i == 0 or cid in linked]


def copy_inputs(dest: Path, root: Path = ROOT) -> Path:
    """A copy of everything ``make book`` reads, without build outputs or caches."""
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "_build", "*.pyc")
    for name in COPIED:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, dest / name)
        else:
            raise FileNotFoundError(f"{src} is missing; the book cannot be built without it")
    # Files a page includes from elsewhere in the repository (the benchmark tables the
    # instructors' pages show): without them the build fails on a missing include.
    for target in included_files(root):
        rel = target.relative_to(root)
        if not (dest / rel).exists():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(target, dest / rel)
    # Generated pages: the build writes them itself, as on a fresh checkout.
    shutil.rmtree(dest / "book" / "exercises", ignore_errors=True)
    return dest


INCLUDE = re.compile(r"^(?:```|:::)\{(?:literal)?include\}\s+(\S+)", re.MULTILINE)


def included_files(root: Path = ROOT) -> list[Path]:
    """Every file inside ``root`` that a book page pulls in with ``{include}`` or
    ``{literalinclude}`` (paths relative to the page)."""
    found = set()
    for page in (root / "book").rglob("*.md"):
        if "_build" in page.parts:
            continue
        for name in INCLUDE.findall(page.read_text(encoding="utf-8")):
            target = (page.parent / name).resolve()
            if target.is_file() and target.is_relative_to(root.resolve()):
                found.add(root / target.relative_to(root.resolve()))
    return sorted(found)


def cache_records(root: Path) -> int:
    """Number of executed notebooks stored in ``<root>/_build/.jupyter_cache``."""
    path = root / "_build" / ".jupyter_cache"
    if not path.is_dir():
        return 0
    from jupyter_cache import get_cache

    return len(get_cache(str(path)).list_cache_records())


def run_build(
    root: Path,
    only: Sequence[str] | None = None,
    *,
    force: bool = False,
    program: Sequence[str] = (sys.executable, "-m", "course_lib.authoring.bookbuild"),
) -> dict:
    """Run ``python -m course_lib.authoring.bookbuild [--only ...]`` (or ``program``) in ``root``.

    Returns:
        {"seconds", "executed", "cached", "new_records"}: notebooks executed and taken from
        the cache according to the log, and records the jupyter cache gained.
    """
    command = list(program)
    if only:
        command += ["--only", ",".join(only)]
    if force:
        command.append("--force")
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("COURSE_EXERCISES_DIR", None)
    env.pop("COURSE_BOOK_ONLY", None)
    before = cache_records(root)
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # Sphinx colours its log
    if proc.returncode != 0:
        tail = "\n".join(log.splitlines()[-15:])
        raise RuntimeError(f"`{' '.join(command[1:])}` failed (exit {proc.returncode}):\n{tail}")
    editions = {}
    for name, stamp in (("en", "_build/html/.bookbuild-stamp.json"), ("zh", ZH_STAMP)):
        path = root / stamp
        editions[name] = json.loads(path.read_text()) if path.is_file() else {}
    return {
        "seconds": seconds,
        "english_seconds": editions["en"].get("seconds"),
        "chinese_seconds": editions["zh"].get("seconds"),
        "chinese_executed": editions["zh"].get("executed"),
        "executed": log.count(EXECUTED),
        "cached": log.count(CACHED),
        "new_records": cache_records(root) - before,
        "pages_read": len(re.findall(r"reading sources\.\.\. \[\s*\d+%\]", log)),
    }


def measure(
    *,
    quick: bool = False,
    log: Callable[[str], None] = print,
    chapters: Sequence[str] | None = None,
    force_builds: int | None = None,
) -> dict:
    """Item 1: cold and warm ``make book``, as a section for ``run.py``."""
    from course_lib.authoring.bookbuild import CHAPTERS

    mode = "quick" if quick else "full"
    n_cold, n_warm, n_force = EFFORT[mode]
    n_force = n_force if force_builds is None else force_builds
    ready, missing = available_chapters()
    if chapters is None:
        chapters = quick_chapters(ready) if quick else ready
    if not chapters:
        raise RuntimeError("no chapter has both book/<id>.md and exercises/<id>/<id>.ipynb")
    only = None if list(chapters) == list(CHAPTERS) else chapters
    cold, warm_stamp, warm_force = [], [], []
    executed_cold, warm_builds = [], []
    cold_en, cold_zh, zh_executed = [], [], []
    for i in range(n_cold):
        with tempfile.TemporaryDirectory(prefix="bench-book-") as tmp:
            root = copy_inputs(Path(tmp))
            log(f"  cold build {i + 1}/{n_cold} of {len(chapters)} chapter(s) in {root}")
            result = run_build(root, only)
            cold.append(result["seconds"])
            executed_cold.append(result["executed"])
            if result["chinese_seconds"] is not None:
                cold_en.append(result["english_seconds"])
                cold_zh.append(result["chinese_seconds"])
                zh_executed.append(result["chinese_executed"])
            # the two kinds of warm build alternate: stamp, force, stamp, stamp, ...
            kinds = [False] * n_warm
            for j in range(n_force):
                kinds.insert(2 * j + 1, True)
            for force in kinds:
                warm = run_build(root, only, force=force)
                (warm_force if force else warm_stamp).append(warm["seconds"])
                warm_builds.append((force, warm))
    # Pair each cold build with the median warm build of its copy for the per-copy ratio.
    stamp_per_copy = [_median(warm_stamp[i * n_warm : (i + 1) * n_warm]) for i in range(n_cold)]
    warm_exec = sum(w["executed"] + max(w["new_records"], 0) for _, w in warm_builds)
    n_executable = len(chapters) + 1  # the chapters and intro.md may hold code cells
    cold_label = f"cold `make book` (empty cache, {len(chapters)} chapters)"
    rows = [
        {
            "label": cold_label,
            "samples": cold,
            "baseline": None,
            "note": f"executed {min(executed_cold)}–{max(executed_cold)} notebooks",
        },
        {
            "label": "warm `make book` (no change: stamp matches)",
            "samples": stamp_per_copy,
            "baseline": cold_label,
            "vs": "cold",
            "note": f"median of {n_warm} per cold build",
        },
    ]
    if cold_zh:
        rows += [
            {
                "label": "of which: English edition (jupyter-book, executing)",
                "samples": cold_en,
                "baseline": cold_label,
                "vs": "cold",
                "note": "time of the jupyter-book run, from its stamp",
            },
            {
                "label": "of which: Chinese edition (Sphinx, zh_CN, from the cache)",
                "samples": cold_zh,
                "baseline": cold_label,
                "vs": "cold",
                "note": f"executed {max(zh_executed)} notebook(s)",
            },
        ]
    if n_force:
        reread = [w["pages_read"] for force, w in warm_builds if force]
        rows.append(
            {
                "label": "warm `bookbuild --force` (jupyter-book, cache)",
                "samples": [
                    _median(warm_force[i * n_force : (i + 1) * n_force]) for i in range(n_cold)
                ],
                "baseline": cold_label,
                "vs": "cold",
                "note": f"median of {n_force} per cold build; Sphinx re-read "
                f"{min(reread)}–{max(reread)} pages",
            }
        )
    facts = [
        "each cold build runs in a fresh temporary copy of book/, _config.yml, course_lib/ and "
        "exercises/, so the user's _build/ and jupyter cache are untouched; chapters built: "
        + ", ".join(chapters)
        + ".",
    ]
    if missing and not quick:
        facts.append("left out (not buildable yet): " + "; ".join(missing) + ".")
    checks = [
        (
            not cold_zh or max(zh_executed) == 0,
            f"the Chinese edition re-executed {max(zh_executed, default=0)} notebook(s) "
            "(must be 0: it reads the English build's cache)",
        ),
        (
            warm_exec == 0,
            f"warm builds re-executed {warm_exec} notebook(s) in {len(warm_builds)} warm builds "
            "(must be 0)",
        ),
        (
            min(executed_cold) >= 1 and max(executed_cold) <= n_executable,
            f"cold builds executed {min(executed_cold)}–{max(executed_cold)} notebook(s) "
            f"(at least one chapter must run, at most {n_executable})",
        ),
    ]
    return {
        "key": "book",
        "title": "1. Book build",
        "status": "measured",
        "rows": rows,
        "facts": facts,
        "checks": checks,
    }


def _median(xs: Sequence[float]) -> float:
    import statistics

    return statistics.median(xs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats; the chapters intro.md links"
    )
    parser.add_argument("--only", default="", help="comma list of chapter ids to build")
    parser.add_argument(
        "--force-builds", type=int, default=None, help="forced warm rebuilds per cold build"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from tables import section_table

    only = [c.strip() for c in args.only.split(",") if c.strip()] or None
    section = measure(quick=args.quick, chapters=only, force_builds=args.force_builds)
    print(section_table(section))
    for fact in section["facts"]:
        print("-", fact)
    for ok, text in section["checks"]:
        print("-", "PASS" if ok else "FAIL", text)
    return 0 if all(ok for ok, _ in section["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
