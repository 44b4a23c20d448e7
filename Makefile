# Two commands do everything on a fresh machine: `make book` and `make test`.
# Both create (or update) the virtual environment in .venv first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JOBS ?= 2
# One BLAS/OpenMP thread per process: tests run two processes on two cores, and torch's default
# of one thread per core makes them fight (measured 20-30x slower on a busy 2-core machine).
export OMP_NUM_THREADS ?= 1

.PHONY: help install book serve test lint format release bench diagrams notebooks clean

help:
	@echo "make book     build the book (HTML under _build/html)"
	@echo "make test     lint and run every test"
	@echo "make serve    serve the built book on http://127.0.0.1:8000"
	@echo "make release  regenerate exercises/ from solutions/"
	@echo "make bench    measure build, grading, check and attention speed (benchmarks/results.md)"
	@echo "make diagrams regenerate the SVG diagrams in book/figures from tools/diagrams.py"
	@echo "make notebooks rewrite notebooks/<id>.ipynb (what the launch links open) from book/"

# torch==2.13.0 is pinned: on these machines it is the CPU wheel that lies on disk.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(BIN)/python -m course_lib.bookbuild
	@echo "The book is at file://$(CURDIR)/_build/html/index.html (make serve to serve it)"

serve: $(STAMP)
	@test -f _build/html/index.html || $(MAKE) book
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory _build/html

lint: $(STAMP)
	$(BIN)/ruff check course_lib tests benchmarks tools
	$(BIN)/ruff format --check course_lib tests benchmarks tools

format: $(STAMP)
	$(BIN)/ruff format course_lib tests benchmarks tools
	$(BIN)/ruff check --fix course_lib tests benchmarks tools

test: $(STAMP) lint
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup

release: $(STAMP)
	$(BIN)/course release

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

diagrams: $(STAMP)
	$(BIN)/python tools/diagrams.py

notebooks: $(STAMP)
	$(BIN)/python -m course_lib.bookbuild --notebooks

clean:
	rm -rf _build .pytest_cache .hypothesis
