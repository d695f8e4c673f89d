# Voronka task runner. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INBOX ?= data/inbox
WAREHOUSE ?= data/warehouse.duckdb
SCALE ?= small
DOCS_PORT ?= 8080
# a postgresql:// URL goes to the commands as it is (D181), a DuckDB file by its absolute path
WAREHOUSE_URL := $(filter postgresql://% postgres://%,$(WAREHOUSE))
WAREHOUSE_ARG = $(if $(WAREHOUSE_URL),$(WAREHOUSE),$(abspath $(WAREHOUSE)))
# one Dagster instance (runs, check history) next to the warehouse, for `make run` and `make dev`
# (for a URL, the run's own: data/postgres/<host>-<port>-<dbname>/.dagster, D181)
DAGSTER_HOME ?= $(if $(WAREHOUSE_URL),$(shell $(BIN)/python -c 'import sys; from dagster_project.lib.warehouse import local_folder; print(local_folder(sys.argv[1]))' '$(WAREHOUSE)'),$(abspath $(dir $(WAREHOUSE))))/.dagster

.PHONY: run test test-quick snapshot dev lint format docs demo clean

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
	DAGSTER_HOME=$(DAGSTER_HOME) $(BIN)/voronka run --inbox $(INBOX) --warehouse '$(WAREHOUSE)'

## demo: (re)write the demo inbox; SCALE=small|medium|large
demo: $(VENV)/.installed
	rm -rf $(INBOX)
	$(BIN)/voronka demo --out $(INBOX) --scale $(SCALE)

## test: set up and run every test (the 25 slowest listed at the end: the suite's budget is 30 minutes)
test: $(VENV)/.installed
	$(BIN)/python -m pytest -q --durations=25

## test-quick: the tests not marked slow
test-quick: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "not slow"

## snapshot: rewrite tests/snapshots/asset_graph.txt from the current asset graph (review the diff)
snapshot: $(VENV)/.installed
	VORONKA_UPDATE_SNAPSHOT=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/integration/test_asset_graph.py

## dev: the Dagster UI on the same definitions and instance as `make run` (http://127.0.0.1:3000)
dev: $(VENV)/.installed
	VORONKA_INBOX=$(abspath $(INBOX)) VORONKA_WAREHOUSE='$(WAREHOUSE_ARG)' \
		DAGSTER_HOME=$(DAGSTER_HOME) sh -c 'mkdir -p "$$DAGSTER_HOME" && \
		$(BIN)/dagster dev -m dagster_project.definitions -h 127.0.0.1 -p 3000'

PY_PATHS := dagster_project tests benchmarks dbt_models/lint

## lint: ruff (style and complexity) on the Python code, sqlfluff on the dbt project (D140)
lint: $(VENV)/.installed
	$(BIN)/ruff check $(PY_PATHS)
	$(BIN)/ruff format --check $(PY_PATHS)
	cd dbt_models && ../$(BIN)/sqlfluff lint .

## format: what ruff and sqlfluff can fix themselves (read the diff before committing it)
format: $(VENV)/.installed
	$(BIN)/ruff format $(PY_PATHS)
	$(BIN)/ruff check --fix $(PY_PATHS)
	cd dbt_models && ../$(BIN)/sqlfluff fix .

## docs: the dbt docs (every model and column) served on http://127.0.0.1:$(DOCS_PORT) (Ctrl-C ends);
## built in dbt_models/target/docs, apart from the pipeline's manifest, from the pipeline's
## working copy (D80: the published file is the readers'; not during a run)
docs: $(VENV)/.installed
	@test -z "$(WAREHOUSE_URL)" || { echo "make docs builds from a DuckDB warehouse: run it without WAREHOUSE=postgresql://..." >&2; exit 2; }
	cd dbt_models && VORONKA_WAREHOUSE=$(abspath $(WAREHOUSE)) \
		VORONKA_WORKING_COPY=$(dir $(abspath $(WAREHOUSE))).voronka/$(basename $(notdir $(WAREHOUSE))).work.duckdb \
		../$(BIN)/dbt docs generate --target-path target/docs
	@echo "dbt docs: http://127.0.0.1:$(DOCS_PORT) (a page opened as a file stays on '(loading)')"
	cd dbt_models && ../$(BIN)/dbt docs serve --target-path target/docs \
		--host 127.0.0.1 --port $(DOCS_PORT) --no-browser

clean:
	rm -rf data dbt_models/target dbt_models/logs
