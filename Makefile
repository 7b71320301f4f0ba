# One command to set up and run the main job, one to set up and run the tests.
#   make demo   -> creates .venv, installs benefits, sweeps the bundled sample district
#   make test   -> creates .venv, installs benefits with test tools and Spark, runs ruff + pytest
#                  (two pytest-xdist workers: whole files per worker, see tests/parallel.py)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
MONTH ?= 2025-01

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,spark]'
	touch $@

.PHONY: install demo test bench
install: $(BIN)/.installed

demo: $(BIN)/.installed
	$(BIN)/benefits sweep --data datasets/sample --month $(MONTH) --out out/sample-$(MONTH)

test: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/sweep.py
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/python benchmarks/web.py
	$(BIN)/python benchmarks/events.py
	$(BIN)/python benchmarks/reliability.py
