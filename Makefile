# The two commands of the README: `make run` and `make test`. Everything else is what they build on.
SHELL := /bin/bash
.DEFAULT_GOAL := help

DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/jizhou
HOST ?= 127.0.0.1
PORT ?= 8000
export DATABASE_URL HOST PORT
export UV_PYTHON_DOWNLOADS := never

UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
PY := .venv/bin/python

.PHONY: help deps db migrate seed run test lint bench clean

help:
	@echo "make run    install, make sure PostGIS answers at DATABASE_URL, migrate, seed, serve on HOST:PORT"
	@echo "make test   the same set-up, then the whole suite against a throwaway database"
	@echo "make lint   ruff and mypy"
	@echo "make bench  benchmarks (prints ratios measured in one run)"

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet --break-system-packages --user uv

deps: $(UV)
	$(UV) sync --frozen --quiet

db: deps
	$(PY) scripts/ensure_db.py

migrate: db
	$(PY) -m alembic upgrade head

seed: migrate
	$(PY) -m app seed

run: seed
	$(PY) -m app serve --host $(HOST) --port $(PORT)

# The suite makes and drops its own databases on the server of DATABASE_URL (see tests/conftest.py).
test: deps
	$(PY) scripts/ensure_db.py --no-create-db
	$(PY) -m pytest $(PYTEST_ARGS)

lint: deps
	.venv/bin/ruff check .
	.venv/bin/mypy app bench

# The bench makes and drops its own databases too (see bench/README.md); BENCH_ARGS="--quick" or "--only 3".
bench: deps
	$(PY) scripts/ensure_db.py --no-create-db
	$(PY) -m bench $(BENCH_ARGS)

clean:
	rm -rf .venv .mypy_cache .ruff_cache .pytest_cache .hypothesis
