"""Forwarding shim: the checkers of chapters 07–13 now live in :mod:`course_lib.grading`.

Notebooks handed out before the move import ``from course_lib import grading_extra as GX``; every
name they use is forwarded, silently. New notebooks use ``G`` only.
"""

from course_lib.grading import *  # noqa: F403
from course_lib.grading import __all__  # noqa: F401
