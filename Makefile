# Two commands a new user needs: `make demo` and `make test`. Both set everything up.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench bench-smoke install clean models

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall when the dependency list or the tested versions change. pyproject.toml declares
# ranges; constraints.txt pins the versions CI tests with.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/auditor run audits/digits_cnn.yaml

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Benchmarks (not tests): auditor against the engines it wraps; writes bench/RESULTS.md.
bench: install
	$(BIN)/python bench/run_all.py

bench-smoke: install
	$(BIN)/python bench/run_all.py --smoke

# Retrain the committed example models (deterministic, CPU, under a minute).
models: install
	$(BIN)/python -m examples.train
	$(BIN)/python -m examples.train_text
	$(BIN)/python -m examples.train_recommendation
	$(BIN)/python -m examples.train_gene

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
