# Voronka task runner. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INBOX ?= data/inbox
WAREHOUSE ?= data/warehouse.duckdb
SCALE ?= small

.PHONY: run test test-quick dev lint format docs demo clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "Python 3.11 is required (found: $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,test]"
	touch $@

## run: set up, write the demo inbox (once), run the whole pipeline, print the summary
run: $(VENV)/.installed
	@test -d $(INBOX) || $(BIN)/voronka demo --out $(INBOX) --scale $(SCALE)
	$(BIN)/voronka run --inbox $(INBOX) --warehouse $(WAREHOUSE)

## demo: (re)write the demo inbox; SCALE=small|medium|large
demo: $(VENV)/.installed
	rm -rf $(INBOX)
	$(BIN)/voronka demo --out $(INBOX) --scale $(SCALE)

## test: set up and run every test
test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

## test-quick: the tests not marked slow
test-quick: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "not slow"

## dev: the Dagster UI on the same definitions (http://127.0.0.1:3000)
dev: $(VENV)/.installed
	VORONKA_INBOX=$(abspath $(INBOX)) VORONKA_WAREHOUSE=$(abspath $(WAREHOUSE)) \
		DAGSTER_HOME=$(abspath .dagster_home) sh -c 'mkdir -p "$$DAGSTER_HOME" && \
		$(BIN)/dagster dev -m dagster_project.definitions -h 127.0.0.1 -p 3000'

## lint: ruff on the Python code
lint: $(VENV)/.installed
	$(BIN)/ruff check dagster_project tests benchmarks
	$(BIN)/ruff format --check dagster_project tests benchmarks

format: $(VENV)/.installed
	$(BIN)/ruff format dagster_project tests benchmarks
	$(BIN)/ruff check --fix dagster_project tests benchmarks

## docs: dbt docs (catalog of every model and column) into dbt_models/target
docs: $(VENV)/.installed
	cd dbt_models && VORONKA_WAREHOUSE=$(abspath $(WAREHOUSE)) ../$(BIN)/dbt docs generate

clean:
	rm -rf data .dagster_home dbt_models/target dbt_models/logs
