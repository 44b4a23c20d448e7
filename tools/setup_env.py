"""The set-up step that ``make install``, ``make book`` and ``make test`` run first.

    python3.11 tools/setup_env.py {install,book,test}

1. System packages the target needs (none for ``install``; a CJK font for ``book``, whose
   figures have Chinese labels; Chromium, a CJK font, bubblewrap and PostgreSQL for ``test``).
   A missing one is installed with apt-get when this process is root or ``sudo -n`` works;
   otherwise the step stops (exit status 1) and prints the exact command to run. Without
   apt-get (macOS, other Linux) it names what is missing and how the tests look for it.
2. The virtual environment in ``.venv``: created and filled (``torch==2.13.0`` pinned, then the
   project with its test extra, then the Jupyter kernel) when ``pyproject.toml`` is newer than
   the last install.

Standard library only: it runs before the virtual environment exists.
"""

from __future__ import annotations

import argparse
import ast
import glob
import os
import platform
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VIZ = REPO_ROOT / "course_lib" / "viz.py"
TORCH = "torch==2.13.0"
# Where Debian's postgresql package puts initdb; tests/instructor/test_export.py looks there too.
POSTGRES_INITDB_GLOB = "/usr/lib/postgresql/*/bin/initdb"


def _cjk_families() -> tuple[str, ...]:
    """The CJK font families course_lib.viz uses, read from its source (no matplotlib yet)."""
    for node in ast.parse(VIZ.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_CJK_FAMILIES" for t in node.targets
        ):
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError(f"_CJK_FAMILIES is not defined in {VIZ}")


def has_cjk_font() -> bool:
    """True if fontconfig knows a Chinese font that course_lib.viz will pick."""
    if platform.system() == "Darwin":
        return True  # PingFang SC ships with macOS
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return False
    out = subprocess.run(
        [fc_list, ":lang=zh", "family"], capture_output=True, text=True, check=False
    ).stdout
    installed = {name.strip() for line in out.splitlines() for name in line.split(",")}
    return bool(installed & set(_cjk_families()))


@dataclass(frozen=True)
class Need:
    """A system package one of the targets needs."""

    what: str  # for people
    apt: tuple[str, ...]  # the Debian/Ubuntu packages that provide it
    present: Callable[[], bool]
    elsewhere: str  # how to satisfy it without apt-get


NEEDS: dict[str, Need] = {
    "cjk-font": Need(
        "a CJK font (figures with Chinese labels)",
        ("fontconfig", "fonts-noto-cjk"),
        has_cjk_font,
        "a Noto Sans CJK font that `fc-list :lang=zh` lists",
    ),
    "chromium": Need(
        "Chromium (browser tests)",
        ("chromium",),
        lambda: shutil.which("chromium") is not None,
        "a `chromium` executable on PATH",
    ),
    "bubblewrap": Need(
        "bubblewrap (grading sandbox)",
        ("bubblewrap",),
        lambda: shutil.which("bwrap") is not None,
        "`bwrap` on PATH",
    ),
    "postgresql": Need(
        "PostgreSQL server binaries (export test)",
        ("postgresql",),
        lambda: bool(glob.glob(POSTGRES_INITDB_GLOB)),
        f"initdb at {POSTGRES_INITDB_GLOB}",
    ),
}

TARGETS: dict[str, tuple[str, ...]] = {
    "install": (),
    "book": ("cjk-font",),
    "test": ("cjk-font", "chromium", "bubblewrap", "postgresql"),
}


def missing(target: str) -> list[Need]:
    """The needs of ``target`` that this machine does not meet."""
    return [NEEDS[name] for name in TARGETS[target] if not NEEDS[name].present()]


def apt_packages(needs: Sequence[Need]) -> list[str]:
    """The Debian packages that provide ``needs``, each once, in order.

    fontconfig is only asked for when ``fc-list`` is missing: it is how the font is found.
    """
    packages: list[str] = []
    for need in needs:
        for package in need.apt:
            if package == "fontconfig" and shutil.which("fc-list"):
                continue
            if package not in packages:
                packages.append(package)
    return packages


def apt_command(packages: Sequence[str], sudo: bool) -> str:
    """The one shell line that installs ``packages`` (what we run, or what we ask a user to run)."""
    prefix = "sudo " if sudo else ""
    names = " ".join(shlex.quote(p) for p in packages)
    return f"{prefix}apt-get update && {prefix}apt-get install -y --no-install-recommends {names}"


def privilege() -> str | None:
    """How this process may install packages: "root", "sudo", or None."""
    if os.geteuid() == 0:
        return "root"
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True).returncode == 0:
        return "sudo"
    return None


def matplotlib_cache() -> Path:
    """Where matplotlib keeps its list of fonts (``MPLCONFIGDIR``, else the XDG cache)."""
    if os.environ.get("MPLCONFIGDIR"):
        return Path(os.environ["MPLCONFIGDIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "matplotlib"


def forget_matplotlib_fonts() -> None:
    """Drop matplotlib's font list, which never notices a newly installed font by itself."""
    for path in matplotlib_cache().glob("fontlist-*.json"):
        path.unlink(missing_ok=True)


def ensure_system(target: str, log: Callable[[str], None] = print) -> int:
    """Install what ``target`` lacks, or explain how; 0 when everything is there."""
    lacking = missing(target)
    if not lacking:
        return 0
    names = ", ".join(n.what for n in lacking)
    if shutil.which("apt-get") is None:
        log(f"make {target} needs {names}, which this machine lacks.")
        log("Install them with your system's package manager so that the tests find:")
        for need in lacking:
            log(f"  - {need.elsewhere}")
        log("(make installs them itself on Debian and Ubuntu.)")
        return 1
    packages = apt_packages(lacking)
    how = privilege()
    if how is None:
        log(f"make {target} needs {names}. Install them with:\n")
        log(f"    {apt_command(packages, sudo=True)}\n")
        log(f"and run make {target} again (this user is not root and `sudo -n` is not allowed).")
        return 1
    command = apt_command(packages, sudo=how == "sudo")
    log(f"make {target} installs {names}: {command}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["/bin/sh", "-c", command], env=env).returncode != 0:
        log(f"installing system packages failed; run it by hand:\n\n    {command}\n")
        return 1
    if NEEDS["cjk-font"] in lacking:
        forget_matplotlib_fonts()
    still = missing(target)
    if still:
        log(f"still missing after apt-get: {', '.join(n.what for n in still)}")
        return 1
    return 0


def ensure_venv(venv: Path, log: Callable[[str], None] = print) -> int:
    """Create or update ``venv`` when pyproject.toml changed since the last install."""
    stamp = venv / ".installed"
    pyproject = REPO_ROOT / "pyproject.toml"
    if stamp.exists() and stamp.stat().st_mtime >= pyproject.stat().st_mtime:
        return 0
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q"]
    steps = [
        ([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], "pip"),
        ([*pip, TORCH], TORCH + " (the CPU wheel on these machines)"),
        ([*pip, "-e", ".[test]"], "course_lib with its test extra"),
        (
            [str(python), "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
            "the python3 Jupyter kernel",
        ),
    ]
    if not python.exists():
        steps.insert(
            0, ([sys.executable, "-m", "venv", str(venv)], f"a virtual environment {venv}")
        )
    for argv, what in steps:
        log(f"installing {what}")
        if subprocess.run(argv, cwd=REPO_ROOT, stdout=subprocess.DEVNULL).returncode != 0:
            log(f"failed: {shlex.join(argv)}")
            return 1
    stamp.touch()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(TARGETS), help="the make target about to run")
    parser.add_argument("--venv", type=Path, default=REPO_ROOT / ".venv")
    args = parser.parse_args(argv)
    if sys.version_info[:2] != (3, 11):
        print(f"Python 3.11 is needed, this is {platform.python_version()}: make PYTHON=python3.11")
        return 1
    venv = args.venv if args.venv.is_absolute() else REPO_ROOT / args.venv
    return ensure_system(args.target) or ensure_venv(venv)


if __name__ == "__main__":
    sys.exit(main())
