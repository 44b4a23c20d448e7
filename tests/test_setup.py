"""The set-up step (tools/setup_env.py) that make book / make test run first.

Which system packages are missing decides which apt-get command runs (root, or ``sudo -n``) or is
printed (anyone else). The machine is faked: PATH holds only fake executables (``chromium``,
``bwrap``, ``fc-list``, ``apt-get`` that records its calls and "installs" by creating them,
``sudo``), PostgreSQL's initdb is looked for in a temporary folder, and the user id is patched.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "tools" / "setup_env.py"
ALL = ["fontconfig", "fonts-noto-cjk", "chromium", "bubblewrap", "postgresql"]

_spec = importlib.util.spec_from_file_location("setup_env", SCRIPT)
setup_env = importlib.util.module_from_spec(_spec)
sys.modules["setup_env"] = setup_env  # dataclasses look their module up there
_spec.loader.exec_module(setup_env)

# apt-get that logs its arguments and "installs" a package by creating what it provides.
FAKE_APT = """#!/bin/sh
echo "$@" >> "$FAKE_LOG"
[ -n "$FAKE_APT_FAILS" ] && exit 100
[ "$1" = install ] || exit 0
for p in "$@"; do
  case "$p" in
    chromium) printf '#!/bin/sh\\n' > "$FAKE_BIN/chromium"; /bin/chmod +x "$FAKE_BIN/chromium" ;;
    bubblewrap) printf '#!/bin/sh\\n' > "$FAKE_BIN/bwrap"; /bin/chmod +x "$FAKE_BIN/bwrap" ;;
    fonts-noto-cjk) printf '#!/bin/sh\\necho "Noto Sans CJK SC,Noto Sans CJK SC Regular"\\n' \
      > "$FAKE_BIN/fc-list"; /bin/chmod +x "$FAKE_BIN/fc-list" ;;
    postgresql) /bin/mkdir -p "$FAKE_PG/15/bin" && : > "$FAKE_PG/15/bin/initdb" ;;
  esac
done
"""


def _exe(path: Path, body: str) -> None:
    path.write_text(body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


class Machine:
    """A fake machine: what is on PATH, who we are, what apt-get was asked."""

    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.bin, self.pg, self.log = tmp / "bin", tmp / "postgresql", tmp / "apt.log"
        self.bin.mkdir()
        self.monkeypatch = monkeypatch
        monkeypatch.setenv("PATH", str(self.bin))
        monkeypatch.setenv("FAKE_BIN", str(self.bin))
        monkeypatch.setenv("FAKE_PG", str(self.pg))
        monkeypatch.setenv("FAKE_LOG", str(self.log))
        monkeypatch.delenv("FAKE_APT_FAILS", raising=False)
        monkeypatch.setattr(setup_env, "POSTGRES_INITDB_GLOB", f"{self.pg}/*/bin/initdb")
        monkeypatch.setattr(setup_env.platform, "system", lambda: "Linux")
        self.user(0)

    def user(self, uid: int) -> None:
        self.monkeypatch.setattr(setup_env.os, "geteuid", lambda: uid)

    def has(self, *names: str, fonts: str = "Noto Sans CJK SC") -> Machine:
        for name in names:
            if name == "fc-list":
                _exe(self.bin / "fc-list", f'#!/bin/sh\necho "{fonts}"\n')
            elif name == "postgresql":
                (self.pg / "15" / "bin").mkdir(parents=True)
                (self.pg / "15" / "bin" / "initdb").touch()
            elif name == "apt-get":
                _exe(self.bin / "apt-get", FAKE_APT)
            elif name == "sudo-refuses":
                _exe(
                    self.bin / "sudo",
                    "#!/bin/sh\necho 'sudo: a password is required' >&2\nexit 1\n",
                )
            elif name == "sudo":
                _exe(self.bin / "sudo", '#!/bin/sh\n[ "$1" = -n ] && shift\nexec "$@"\n')
                _exe(self.bin / "true", "#!/bin/sh\n")
            else:
                _exe(self.bin / name, "#!/bin/sh\n")
        return self

    def apt_calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Machine:
    return Machine(tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("present", "target", "packages"),
    [
        ([], "test", ALL),
        ([], "book", ["fontconfig", "fonts-noto-cjk"]),
        ([], "install", []),
        (["fc-list", "chromium", "bwrap", "postgresql"], "test", []),
        (["fc-list", "chromium"], "test", ["bubblewrap", "postgresql"]),
        (["fc-list", "bwrap", "postgresql"], "book", []),
        (["chromium", "bwrap", "postgresql"], "test", ["fontconfig", "fonts-noto-cjk"]),
    ],
)
def test_missing_packages_decide_the_apt_packages(machine, present, target, packages) -> None:
    machine.has(*present)
    assert setup_env.apt_packages(setup_env.missing(target)) == packages


def test_a_font_without_chinese_is_not_enough(machine) -> None:
    machine.has("fc-list", fonts="DejaVu Sans,DejaVu Sans Book")
    assert setup_env.apt_packages(setup_env.missing("book")) == ["fonts-noto-cjk"]
    assert not setup_env.has_cjk_font()


def test_the_font_families_are_the_ones_viz_uses() -> None:
    from course_lib import viz

    assert setup_env._cjk_families() == viz._CJK_FAMILIES


def test_non_root_without_sudo_stops_with_the_exact_command(machine, capsys) -> None:
    machine.has("apt-get", "fc-list", "postgresql").user(1000)
    assert setup_env.ensure_system("test") == 1
    out = capsys.readouterr().out
    assert (
        "    sudo apt-get update && sudo apt-get install -y --no-install-recommends "
        "chromium bubblewrap\n" in out
    )
    assert machine.apt_calls() == []


def test_a_sudo_that_asks_for_a_password_counts_as_no_sudo(machine, capsys) -> None:
    machine.has("apt-get", "sudo-refuses").user(1000)
    assert setup_env.ensure_system("book") == 1
    assert "sudo apt-get install -y --no-install-recommends fontconfig fonts-noto-cjk" in (
        capsys.readouterr().out
    )
    assert machine.apt_calls() == []


def test_root_installs_what_is_missing_and_checks_again(
    machine, capsys, tmp_path, monkeypatch
) -> None:
    machine.has("apt-get", "bwrap")
    # matplotlib's font list predates the new font: it must go, or the book never sees the font.
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "mpl"))
    fontlist = tmp_path / "mpl" / "fontlist-v390.json"
    fontlist.parent.mkdir()
    fontlist.write_text("{}")
    assert setup_env.ensure_system("test") == 0
    assert machine.apt_calls() == [
        "update",
        "install -y --no-install-recommends fontconfig fonts-noto-cjk chromium postgresql",
    ]
    assert setup_env.missing("test") == []
    assert "apt-get update && apt-get install" in capsys.readouterr().out
    assert not fontlist.exists()
    assert setup_env.ensure_system("test") == 0  # nothing left to do: apt-get is not called
    assert len(machine.apt_calls()) == 2


def test_passwordless_sudo_installs(machine, tmp_path, monkeypatch) -> None:
    machine.has("apt-get", "sudo", "fc-list").user(1000)
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path))
    (tmp_path / "fontlist-v390.json").write_text("{}")
    assert setup_env.ensure_system("book") == 0
    assert setup_env.ensure_system("test") == 0
    assert machine.apt_calls()[-1] == (
        "install -y --no-install-recommends chromium bubblewrap postgresql"
    )
    assert (tmp_path / "fontlist-v390.json").exists()  # the font was there: the list is kept


def test_a_failing_apt_get_prints_the_command_to_retry(machine, monkeypatch, capsys) -> None:
    machine.has("apt-get", "fc-list", "chromium", "postgresql")
    monkeypatch.setenv("FAKE_APT_FAILS", "1")
    assert setup_env.ensure_system("test") == 1
    assert "run it by hand:\n\n    apt-get update && apt-get install -y" in capsys.readouterr().out


def test_without_apt_get_it_names_what_is_missing(machine, capsys) -> None:
    machine.has("fc-list", "postgresql")
    assert setup_env.ensure_system("test") == 1
    out = capsys.readouterr().out
    assert "a `chromium` executable on PATH" in out and "`bwrap` on PATH" in out
    assert "apt-get" not in out.replace("(make installs them itself", "")


def test_macos_has_a_cjk_font_so_the_book_needs_nothing(machine, monkeypatch) -> None:
    monkeypatch.setattr(setup_env.platform, "system", lambda: "Darwin")
    assert setup_env.ensure_system("book") == 0
    assert setup_env.ensure_system("install") == 0


def test_make_test_stops_before_any_test_when_it_cannot_install(tmp_path: Path) -> None:
    """Through make: a non-root user without sudo gets the command, and no venv, lint or pytest."""
    make = shutil.which("make")
    assert make, "make is needed for this test"
    fake_bin, site, venv = tmp_path / "bin", tmp_path / "site", tmp_path / "venv"
    fake_bin.mkdir()
    site.mkdir()
    _exe(fake_bin / "apt-get", f"#!/bin/sh\necho called >> {tmp_path / 'apt.log'}\n")
    # Every process of this python believes it is an ordinary user.
    (site / "sitecustomize.py").write_text("import os\nos.geteuid = lambda: 1000\n")
    done = subprocess.run(
        [make, "--no-print-directory", "test", f"PYTHON={sys.executable}", f"VENV={venv}"],
        cwd=REPO_ROOT,
        env=dict(os.environ, PATH=str(fake_bin), PYTHONPATH=str(site)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    packages = ["fontconfig", "fonts-noto-cjk", "chromium", "bubblewrap"]
    if not glob.glob(setup_env.POSTGRES_INITDB_GLOB):
        packages.append("postgresql")
    command = "sudo apt-get update && sudo apt-get install -y --no-install-recommends "
    assert f"\n    {command}{' '.join(packages)}\n" in done.stdout
    assert not venv.exists() and not (tmp_path / "apt.log").exists()
    assert "ruff" not in done.stdout + done.stderr and "pytest" not in done.stdout + done.stderr


@pytest.mark.parametrize("target", ["book", "test"])
def test_book_and_test_run_the_set_up_step_first(target: str) -> None:
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    first = done.stdout.splitlines()[0]
    assert first.endswith(f"tools/setup_env.py --venv .venv {target}"), first


def test_ci_runs_make_test_last_and_keeps_no_package_list_of_its_own() -> None:
    lines = [
        line.strip()
        for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[-1] == "make test"
    assert not any("apt-get" in line or "dpkg" in line for line in lines)
