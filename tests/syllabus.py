"""The graded names of SYLLABUS.md, parsed (a helper module, not a test: the syllabus contract
and the notebook tests read :data:`SPECS`).

``tests/data/SYLLABUS.md`` is a copy for clones without ``../shared``; a test keeps the two equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from course_lib import CHAPTER_MODULES

HERE = Path(__file__).parent
SHARED = HERE.parent.parent / "shared" / "SYLLABUS.md"
VENDORED = HERE / "data" / "SYLLABUS.md"
SYLLABUS = SHARED if SHARED.exists() else VENDORED


@dataclass
class Spec:
    chapter: str
    name: str
    params: str  # the text between the parentheses
    owner: str | None = None  # class name for __init__ / forward
    submodules: list[str] = field(default_factory=list)


def parse_syllabus(text: str) -> list[Spec]:
    """One Spec per graded function, class constructor and forward in the Exercise lists."""
    specs: list[Spec] = []
    for section in re.split(r"^### ", text, flags=re.M)[1:]:
        chapter = section.split()[0]
        if chapter not in CHAPTER_MODULES:
            continue
        exercise = section.split("Exercise:", 1)[1]
        for bullet in re.findall(r"^- (.*)$", exercise, flags=re.M):
            spans = re.findall(r"`([^`]*)`", bullet)
            owner = None
            for span in spans:
                if m := re.match(r"class (\w+)\(", span):
                    owner = m.group(1)
                    specs.append(Spec(chapter, owner, "", owner=None))
                    continue
                m = re.match(r"(\w+)\((.*)\)(?:\s*->.*)?$", span)
                if not m or m.group(1)[0].isupper():
                    continue  # a shape, a value or a torch name such as nn.Embedding(...)
                name, params = m.groups()
                if owner and name in ("__init__", "forward"):
                    specs.append(Spec(chapter, name, params, owner=owner))
                elif not owner and (span is spans[0] or f"and `{span}`" in bullet):
                    specs.append(Spec(chapter, name, params))
            if owner and "same submodule names" in bullet:
                classes = [s for s in specs if s.owner is None and s.name[0].isupper()]
                classes[-1].submodules = list(classes[-2].submodules)
            elif owner and (sub := re.search(r"submodules? (.*?)(?:;|, `forward|$)", bullet)):
                names = re.findall(r"`(\w+)`", sub.group(1))
                cls_spec = next(s for s in specs if s.name == owner and s.owner is None)
                cls_spec.submodules = [n for n in names if n[0].islower()]
    return specs


SPECS = parse_syllabus(SYLLABUS.read_text(encoding="utf-8"))
