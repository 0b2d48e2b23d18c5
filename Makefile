# rtbank: `make run` starts a demo on embedded defaults, `make test` runs every test (SQLite and PostgreSQL passes at once).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-sqlite lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The demo serves plain HTTP on 127.0.0.1 only; a real deployment sits behind TLS.
run: setup
	RTBANK_INSECURE_HTTP=1 $(BIN)/rtbank demo

test: setup
	$(BIN)/python -m tests.harness

test-sqlite: setup
	$(BIN)/python -m tests.harness --sqlite-only

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/rtbank/dicom

clean:
	rm -rf var .test-artifacts
