# Two commands for a fresh machine: `make run` (installs, then starts the bot) and `make test`.
# `make demo` starts the bot against the bundled doubles (no token, no network).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Every version is the one CI passed with (requirements.lock; `make lock` rewrites it from a passing
# venv). torch comes from PyTorch's CPU index as 2.13.0+cpu: from the default index the same version
# is the CUDA build, with more than 1.6 GiB of nvidia wheels.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PIP_INSTALL = $(BIN)/pip install -q -c requirements.lock

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch alone from the CPU index, without its dependencies (that index lags PyPI's versions), then
# everything else from the default index: the torch already installed satisfies the lock.
torch: $(BIN)/python
	$(PIP_INSTALL) --index-url $(TORCH_INDEX) --retries 1 --no-deps torch

install: torch
	$(PIP_INSTALL) -e .

install-test: torch
	$(PIP_INSTALL) -e '.[test]'

# BOT_TOKEN is checked before anything is installed: without it, how to get one (and `make demo`).
run: check-token install
	$(BIN)/python bot.py

check-token:
	@if [ -z "$$BOT_TOKEN" ] && ! grep -qsE '^BOT_TOKEN=.+' .env; then \
		echo "BOT_TOKEN is not set. To get one:"; \
		echo "  1. In Telegram, open @BotFather and send /newbot; choose a name and a username ending in 'bot'."; \
		echo "  2. Send /setjoingroups, pick your bot, then Disable (BiliPick works in private chats)."; \
		echo "  3. Copy the token BotFather gives you and run:  BOT_TOKEN=123456:ABC... make run"; \
		echo "     (or put BOT_TOKEN=... in .env). The bot sets its own command menu."; \
		echo "To try BiliPick first, with no token and no network:  make demo"; \
		exit 2; \
	fi

# The real bot against the bundled doubles, and a chat page on http://127.0.0.1:8080 (tests/demo/).
demo: install
	$(BIN)/python -m tests.demo --port $${DEMO_PORT:-8080}

test: install-test
	$(BIN)/python -m pytest -q

# Style, format, types and the layer rule (README "Layout"); CI runs it after the tests.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Rewrites requirements.lock from this venv (after a green `make test`).
lock:
	$(BIN)/pip list --format=freeze --exclude-editable | grep -vE '^(bilipick|pip|setuptools|wheel)==' > requirements.lock

.PHONY: torch install install-test run check-token demo test lint lock
