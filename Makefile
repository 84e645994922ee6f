# Two commands for a fresh machine: `make run` (installs, then starts the bot) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch is pinned first: the CPU build of 2.13.0; an unpinned torch drags in a multi-GB CUDA build.
install: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .

install-test: $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'

run: install
	$(BIN)/python bot.py

test: install-test
	$(BIN)/python -m pytest -q

.PHONY: install install-test run test
