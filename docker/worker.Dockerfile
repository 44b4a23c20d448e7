# A grading worker for `course grade --scheduler tcp://HOST:8786` (see the book's appendix page
# "Grading a large class"): Python 3.11, the pinned torch, this project and bubblewrap, installed
# as .ci/run and the Makefile do. Build it from the repository root, at the commit the client
# runs (a worker with other grading code is refused):
#
#   docker build -f docker/worker.Dockerfile -t course-grader:$(git rev-parse --short HEAD) .
#   docker run --rm --network host --security-opt seccomp=unconfined \
#       --security-opt apparmor=unconfined course-grader:TAG \
#       dask worker tcp://SCHEDULER:8786 --nthreads 1 --nworkers 2
#
# bubblewrap needs to create namespaces inside the container, hence the two --security-opt;
# without them the worker grades with limits and its own uid only, and the client warns.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    OMP_NUM_THREADS=1 \
    MPLBACKEND=Agg

# Dask's settings for a grading worker (course_lib.instructor.distributed.WORKER_CONFIG): no
# statistical profiler, slower ticks; the same scheduler settings do no harm.
ENV DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False \
    DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=500ms \
    DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL=2s

# .ci/run: the sandbox's system package.
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/course
COPY pyproject.toml README.md ./
COPY course_lib ./course_lib

# The Makefile: torch pinned first, then the project with its instructor extra (which pins
# dask[distributed] and the grading stack).
RUN python -m pip install -q --upgrade pip \
    && python -m pip install -q "torch==2.13.0" \
    && python -m pip install -q ".[instructor]" \
    && python -c "from course_lib.instructor.distributed import code_version; print('grading code', code_version())"

# Student code runs as unprivileged uids inside bubblewrap; the worker itself is trusted code.
CMD ["dask", "worker", "--help"]
