"""Transformer fundamentals: the course's Python package, in four parts.

1. **The reference** (what the book shows and students import): one module per chapter, listed
   in :mod:`course_lib.chapters` (``tensors`` for 01_tensors ... ``gpt`` for 13_gpt), plus
   :mod:`.viz` (figures), :mod:`.interactive` (explorers) and :mod:`.data` (small data sets).
   A chapter module imports only chapter modules of the same or an earlier chapter.
2. **The checkers** the graded notebooks' test cells import: :mod:`course_lib.grading`
   (``from course_lib import grading as G``); :mod:`.check` is ``course check``, the student's
   self-check.
3. **The instructor's tools**: :mod:`course_lib.instructor` (``course grade``, ``course
   export``: a sandboxed, parallel, resumable grading pipeline).
4. **Authoring**: :mod:`course_lib.authoring` (``course release`` and the book build).

:mod:`.cli` is the ``course`` command. ``tests/test_layers.py`` checks who may import whom.
Submodules are imported explicitly, so ``import course_lib`` stays cheap.
"""

from course_lib.chapters import CHAPTERS, Chapter

__version__ = "0.1.0"

CHAPTER_MODULES: dict[str, str] = {c.id: c.module for c in CHAPTERS}
"""Chapter id -> reference module name (``"07_masking": "masking"``)."""

__all__ = ["CHAPTERS", "CHAPTER_MODULES", "Chapter", "__version__"]
