# Every target works on a fresh clone: `make` creates .venv and installs into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
FUZZ_STAMP := $(VENV)/.installed-fuzz
DJANGO ?= Django>=5.2,<5.3
# The real projects' extras that fit $(DJANGO) (tests/test_realprojects.py): the Django 6.x
# matrix entries leave out realprojects-django52.
REALPROJECTS ?= realprojects,realprojects-django52

.PHONY: install test test-matrix test-py311-django52 test-py312-django60 test-py313-django61 \
	lint bench demo soak fuzz docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[django,test,docs,$(REALPROJECTS)]' '$(DJANGO)'
	touch $(STAMP)

# The bench extra (the rivals fire is measured against) on top: only `make bench` needs it.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

# The fuzz extra (atheris) on top: only `make fuzz` needs it.
$(FUZZ_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[fuzz]'
	touch $(FUZZ_STAMP)

# The whole suite in two runs: what keeps to its own sockets, databases (the run's pid in
# their names) and processes runs on two xdist workers; the runners' tests drive whole
# pytest and unittest runs, terminals, signals and xdist themselves, and run alone. Both
# always run; the target fails if either failed.
PARALLEL_TESTS := tests/bench tests/contracts tests/djfire tests/fire
SERIAL_TESTS := tests/runners tests/test_ci_matrix.py tests/test_install.py \
	tests/test_realprojects.py tests/test_soak.py
test: install
	@status=0; \
	$(BIN)/python -m pytest -n 2 $(PARALLEL_TESTS) $(PYTEST_ARGS) || status=$$?; \
	$(BIN)/python -m pytest $(SERIAL_TESTS) $(PYTEST_ARGS) || status=$$?; \
	exit $$status

# The supported matrix: each entry runs `make test demo` on one Python and one Django, in
# a virtualenv of its own (.ci/matrix-entry skips an entry whose Python is missing, and
# fails it under CI=true). The first entry is also the default `make test` when python3
# is 3.11.
test-matrix:
	$(MAKE) test-py311-django52
	$(MAKE) test-py312-django60
	$(MAKE) test-py313-django61

test-py311-django52:
	.ci/matrix-entry 3.11 'Django>=5.2,<5.3' .venv-py311-django52

test-py312-django60:
	.ci/matrix-entry 3.12 'Django>=6.0,<6.1' .venv-py312-django60 realprojects

test-py313-django61:
	.ci/matrix-entry 3.13 'Django>=6.1,<6.2' .venv-py313-django61 realprojects

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

demo: install
	$(MAKE) -C examples demo PYTHON=$(abspath $(BIN)/python)

# The soak (soak/, docs/reference/soak.md): SOAK_TESTS full-system tests over both example
# services on PostgreSQL, two xdist workers; fails when a row survives, a server's RSS grows
# more than 5 % or its open file descriptors change. SOAK_SEED picks the tests' data.
SOAK_TESTS ?= 10000
soak: install
	cd soak && SOAK_TESTS=$(SOAK_TESTS) $(abspath $(BIN))/python -m pytest -n 2 -q $(PYTEST_ARGS)

# The fuzzers (fuzz/, docs/reference/fuzzing.md): atheris over the wire format and the
# dispatcher for FUZZ_RUNS inputs, then a hypothesis state machine against a live server for
# FUZZ_EXAMPLES examples after 100 of warm-up; both from FUZZ_SEED. Fails on a crash, or
# when the server's RSS grows more than 5 %. The defaults are the short run CI makes; the
# long one: `make fuzz FUZZ_RUNS=1000000 FUZZ_EXAMPLES=1000`.
FUZZ_RUNS ?= 100000
FUZZ_EXAMPLES ?= 100
FUZZ_SEED ?= 1
fuzz: $(FUZZ_STAMP)
	$(BIN)/python -m fuzz.wire -runs=$(FUZZ_RUNS) -seed=$(FUZZ_SEED)
	$(BIN)/python -m fuzz.live --examples $(FUZZ_EXAMPLES) --seed $(FUZZ_SEED)

docs: install
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .venv-* site build *.egg-info
