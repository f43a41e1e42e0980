# Every target works on a fresh clone: `make` creates .venv and installs into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DJANGO ?= Django>=5.2,<6

.PHONY: install test test-django42 lint bench demo docs clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[django,test,docs]' '$(DJANGO)'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The djfire and runner tests again, on Django 4.2 LTS, in a venv of their own.
test-django42:
	$(MAKE) test VENV=.venv-django42 DJANGO='Django>=4.2,<5' PYTEST_ARGS='tests/djfire tests/runners $(PYTEST_ARGS)'

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install
	$(BIN)/python -m bench

demo: install
	$(MAKE) -C examples demo PYTHON=$(abspath $(BIN)/python)

docs: install
	$(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) .venv-django42 site build *.egg-info
