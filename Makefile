# Two commands do everything on a fresh machine: `make book` and `make test`.
# Both run the set-up step first (tools/setup_env.py): it installs the system packages the target
# needs (apt-get, when root or `sudo -n` may; otherwise it stops with the command to run) and
# creates or updates the virtual environment in .venv.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
JOBS ?= 2
# make publish: the built site goes to this branch of this remote (a name or a URL/path).
SITE ?= _build/html
REMOTE ?= origin
PAGES_BRANCH ?= gh-pages
# One BLAS/OpenMP thread per process: tests run two processes on two cores, and torch's default
# of one thread per core makes them fight (measured 20-30x slower on a busy 2-core machine).
export OMP_NUM_THREADS ?= 1
SETUP = @command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is needed: make PYTHON=/path/to/python3.11"; exit 1; }; \
	$(PYTHON) tools/setup_env.py --venv $(VENV)

.PHONY: help install book serve test lint format release bench publish diagrams notebooks \
	translations clean

help:
	@echo "make book     build the book: English in _build/html, Chinese in _build/html/zh"
	@echo "make translations update the Chinese catalogues (book/locale) after an English edit"
	@echo "make test     lint and run every test"
	@echo "make serve    serve the built book on http://127.0.0.1:8000"
	@echo "make publish  push the built book to the $(PAGES_BRANCH) branch of $(REMOTE)"
	@echo "make notebooks rebuild every generated notebook: solutions/ from assignments/, then"
	@echo "               exercises/ (course release), then notebooks/<id>.ipynb (the launch links)"
	@echo "make release  regenerate exercises/ from solutions/ only"
	@echo "make bench    measure build, grading, check and attention speed (benchmarks/results.md)"
	@echo "make diagrams regenerate the SVG diagrams in book/figures from tools/diagrams.py"

install:
	$(SETUP) install

book:
	$(SETUP) book
	$(BIN)/python -m course_lib.authoring.bookbuild
	@echo "The book is at file://$(CURDIR)/_build/html/index.html (make serve to serve it)"
	@echo "中文版 (the Chinese edition): file://$(CURDIR)/_build/html/zh/index.html"

# After an English edit: extract the messages, merge them into book/locale/zh_CN/LC_MESSAGES/,
# list what needs translating (tests/test_book_i18n.py fails until it is done).
translations: install
	$(BIN)/python -m course_lib.authoring.i18n translations

serve: install
	@test -f _build/html/index.html || $(MAKE) book
	$(BIN)/python -m http.server 8000 --bind 127.0.0.1 --directory _build/html

lint: install
	$(BIN)/ruff check course_lib tests benchmarks tools assignments
	$(BIN)/ruff format --check course_lib tests benchmarks tools assignments

format: install
	$(BIN)/ruff format course_lib tests benchmarks tools assignments
	$(BIN)/ruff check --fix course_lib tests benchmarks tools assignments

test:
	$(SETUP) test
	@$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -n $(JOBS) --dist loadgroup

release: install
	$(BIN)/course release

bench: install
	$(BIN)/python benchmarks/run.py

# ghp-import commits $(SITE) (both editions: zh/ is a folder of it) with a .nojekyll file.
publish: install
	@test -f $(SITE)/index.html || { echo "$(SITE)/index.html is missing: run make book first"; exit 1; }
	$(BIN)/ghp-import --no-jekyll --push --force --remote $(REMOTE) --branch $(PAGES_BRANCH) \
		--message "Publish the book from $$(git rev-parse --short HEAD)" $(SITE)
	@echo "Pushed $(SITE) to the $(PAGES_BRANCH) branch of $(REMOTE)."

diagrams: install
	$(BIN)/python tools/diagrams.py

# assignments/<id>.py -> solutions/<id>/<id>.ipynb -> exercises/<id>/<id>.ipynb, and the
# launch-link notebooks notebooks/<id>.ipynb from book/.
notebooks: install
	$(BIN)/python tools/build_solutions.py
	$(BIN)/course release
	$(BIN)/python -m course_lib.authoring.bookbuild --notebooks

clean:
	rm -rf _build .pytest_cache .hypothesis
