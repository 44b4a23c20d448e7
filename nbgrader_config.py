"""nbgrader configuration of the course (run nbgrader from the repository root).

``solutions/<id>/<id>.ipynb`` is the instructor source (built by ``tools/build_solutions.py``);
``course release <id>`` (nbgrader generate_assignment) writes the student notebook to
``exercises/<id>/<id>.ipynb``. Hidden tests are seeded at grading time by the environment
variable ``COURSE_GRADING_SEED`` (see ``course_lib.grading``), so export it before
``nbgrader autograde``.
"""

c = get_config()  # noqa: F821 (nbgrader provides get_config)

c.CourseDirectory.course_id = "transformer-fundamentals"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"

# What the student sees in place of each solution body.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# A test cell takes well under 2 s; 120 s per cell only stops a student's endless loop.
c.Execute.timeout = 120
