# Two commands on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench vercel-check clean

run: $(VENV)/.installed
	$(BIN)/gunicorn

test: $(VENV)/.dev-installed
	bash scripts/ensure_redis.sh
	bash scripts/ensure_browser.sh
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .

# Throughput and CPU per message, store cost, memory, outside calls and the metrics' cost in
# one run (~7 min on a quiet box): bench/results.json.
bench: $(VENV)/.dev-installed
	bash bench/ensure_wrk.sh
	bash scripts/ensure_redis.sh
	$(BIN)/python -m bench.run_all

# Builds the Vercel deployment offline and calls its handler with GET /health.
vercel-check:
	bash scripts/vercel_check.sh

$(VENV)/.installed: requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .vercel
