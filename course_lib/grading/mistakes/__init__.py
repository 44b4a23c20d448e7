"""Known mistakes, one module per reference module it mirrors (``attention.py`` for
:mod:`course_lib.attention`), each with that chapter's special checkers."""
