"""``course release``: the student notebooks ``exercises/<id>/<id>.ipynb`` from the nbgrader
sources ``solutions/<id>/<id>.ipynb`` (``nbgrader generate_assignment``), and the helpers that
find the course and run nbgrader with its configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

CONFIG = "nbgrader_config.py"
SOURCE_DIR = "solutions"
RELEASE_DIR = "exercises"


class CourseError(Exception):
    """A problem the user can fix; printed without a traceback, exit status 2."""


def course_root(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: cwd) with nbgrader_config.py and
    solutions/; failing that, the checkout this package was installed from."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG).is_file() and (candidate / SOURCE_DIR).is_dir():
            return candidate
    package_checkout = Path(__file__).resolve().parents[2]
    if (package_checkout / CONFIG).is_file():
        return package_checkout
    raise CourseError(
        f"no course directory found: run this inside the course checkout (the folder with "
        f"{CONFIG} and {SOURCE_DIR}/) or pass --root"
    )


def nbgrader_env() -> dict[str, str]:
    """The environment for nbgrader: it runs ``alembic`` by name, so put our bin on PATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_nbgrader(root: Path, *args: str, quiet: bool = False) -> None:
    """Run ``nbgrader <args>`` in ``root``; raise :class:`CourseError` with its log on failure."""
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=root,
        env=nbgrader_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise CourseError(f"nbgrader {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    if not quiet:
        sys.stdout.write(proc.stdout)


def chapter_ids(root: Path) -> list[str]:
    """Assignments with an instructor source ``solutions/<id>/<id>.ipynb``."""
    return sorted(
        p.parent.name
        for p in (root / SOURCE_DIR).glob("*/*.ipynb")
        if p.stem == p.parent.name and ".ipynb_checkpoints" not in p.parts
    )


def release(
    ids: Sequence[str] | None = None, root: Path | None = None, quiet: bool = False
) -> list[Path]:
    """Generate the student notebooks of ``ids`` (default: all); returns their paths."""
    root = course_root() if root is None else root
    known = chapter_ids(root)
    ids = list(ids or known)
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise CourseError(
            f"unknown assignment {', '.join(unknown)}; choose from {', '.join(known)}"
        )
    written = []
    for chapter in ids:
        run_nbgrader(
            root, "generate_assignment", chapter, "--force", "--log-level=WARN", quiet=True
        )
        path = root / RELEASE_DIR / chapter / f"{chapter}.ipynb"
        written.append(path)
        if not quiet:
            print(f"released {path.relative_to(root)}")
    return written
