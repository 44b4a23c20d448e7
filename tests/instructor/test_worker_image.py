"""The Dask worker image (``docker/worker.Dockerfile``) pins what ``pyproject.toml`` pins.

It cannot be built on these machines, so this checks its text: the Python of its base image
satisfies ``requires-python``, every ``name==version`` it installs is pinned alike in
``pyproject.toml``, it installs the project itself and the sandbox's system package (as
``.ci/run`` does), and it ships only what grading needs.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "worker.Dockerfile"


def _pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {}
    for text in project["dependencies"] + project["optional-dependencies"]["instructor"]:
        req = Requirement(text)
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if exact:
            pins[req.name.lower()] = exact[0]
    return pins


def _run_lines() -> str:
    text = DOCKERFILE.read_text()
    return re.sub(r"\\\n", " ", "\n".join(ln for ln in text.splitlines() if not ln.startswith("#")))


def test_base_image_python_satisfies_requires_python() -> None:
    base = re.search(r"^FROM python:(\d+\.\d+)[-\w.]*$", DOCKERFILE.read_text(), re.M)
    assert base, "the worker image must start FROM an official python:X.Y image"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]).contains(base.group(1) + ".0")
    assert base.group(1) == "3.11"


def test_every_pinned_install_matches_pyproject() -> None:
    pins = _pins()
    assert pins["torch"] == "2.13.0" and "dask" in pins
    installed = re.findall(r"pip install[^\n&]*?\"([A-Za-z0-9_.\-\[\]]+)==([^\"]+)\"", _run_lines())
    assert installed, "the image must pin torch as the Makefile does"
    for name, version in installed:
        key = re.sub(r"\[.*\]", "", name).lower()
        assert pins.get(key) == version, (name, version, pins.get(key))
    assert ("torch", "2.13.0") in installed


def test_installs_the_project_and_the_sandbox_like_ci() -> None:
    lines = _run_lines()
    assert re.search(r'pip install -q "\.\[instructor\]"( |$)', lines, re.M), "the project"
    assert "COPY course_lib ./course_lib" in lines and "COPY pyproject.toml" in lines
    # .ci/run's set-up step (tools/setup_env.py) installs the same sandbox package for the tests
    setup = (ROOT / "tools" / "setup_env.py").read_text()
    assert re.search(r'"bubblewrap": Need\(', setup) and '("bubblewrap",)' in setup
    assert re.search(r"apt-get install [^\n]*\bbubblewrap\b", lines)
    assert "OMP_NUM_THREADS=1" in lines  # as the Makefile exports


def test_build_context_holds_only_what_grading_needs() -> None:
    text = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [ln.strip() for ln in text if ln.strip() and not ln.startswith("#")]
    assert rules[:4] == ["*", "!pyproject.toml", "!README.md", "!course_lib/"]


def test_sets_the_grading_workers_dask_settings() -> None:
    """``dask worker`` in the image reads the grading workers' settings from its environment,
    the same as ``--scheduler local:N`` applies (``WORKER_CONFIG``)."""
    from course_lib.instructor.distributed import WORKER_CONFIG, worker_env

    env = dict(
        re.findall(r"(DASK_[A-Z_]+)=(\S+)", " ".join(re.findall(r"^ENV (.*)$", _run_lines(), re.M)))
    )
    assert env == worker_env() and len(env) == len(WORKER_CONFIG)
    assert env["DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED"] == "False"
