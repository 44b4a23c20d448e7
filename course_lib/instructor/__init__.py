"""Instructor tools: sandboxed, parallel, resumable grading (``course grade``) and export.

Modules: :mod:`.wire` (the safe message format), :mod:`.worker` (the student side, inside the
sandbox), :mod:`.sandbox` (bubblewrap and resource limits; proxies), :mod:`.notebooks`
(trusted source, submission extraction, static analysis), :mod:`.grader` (one submission),
:mod:`.pipeline` (all of them), :mod:`.report`, :mod:`.export` and :mod:`.commands` (what each
``course`` instructor subcommand does; :mod:`course_lib.cli` builds the command line).
"""
