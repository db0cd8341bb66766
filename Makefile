# The two commands a new user needs: `make run` and `make test` (both set up the venv themselves).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
BIN    := $(VENV)/bin

# Bytecode at install: import great_expectations is twice as fast (PYTHONDONTWRITEBYTECODE may be set).
export UV_COMPILE_BYTECODE := 1
# Use the machine's Python 3.11; never download an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: setup run test lint ui demo bench clean clean-landing spark

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.8

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --python $(PYTHON)
	@touch $@

# The optional Spark group (pyspark, dbt-spark): only make test (CI) and make spark install it.
# (uv may recreate .venv on sync, dropping .synced: the synced venv is a superset, so mark both)
$(VENV)/.synced-spark: $(VENV)/.synced
	$(UV) sync --locked --python $(PYTHON) --group spark
	@touch $(VENV)/.synced $@

## Build the same dbt models on Spark (local, in-process) from the demo warehouse's raw schema.
spark: setup $(VENV)/.synced-spark
	$(BIN)/cxw spark-build

$(DAGSTER_HOME)/dagster.yaml: dagster_project/dagster.yaml
	@mkdir -p $(DAGSTER_HOME) && cp dagster_project/dagster.yaml $@

setup: $(VENV)/.synced $(DAGSTER_HOME)/dagster.yaml

## Build the whole warehouse on the bundled demo deliveries and print a summary (ARGS=--verbose: dbt's whole log).
run: setup
	$(BIN)/python -m dagster_project.run $(ARGS)

## Lint (ruff, SQLFluff with the dbt templater), then the full test suite (real DuckDB, dbt, GX and Dagster runs).
test: setup lint $(VENV)/.synced-spark
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check dagster_project tests bench
	$(BIN)/ruff format --check dagster_project tests bench
	cd dbt && CXW_DBT_DUCKDB_PATH=$(CURDIR)/dbt/target/sqlfluff.duckdb ../$(BIN)/sqlfluff lint models tests

## Dagster UI on 127.0.0.1:3000 with the whole lineage.
ui: setup
	$(BIN)/dagster dev -m dagster_project.definitions -h 127.0.0.1 -p 3000

## Performance benchmark at 1M source rows (20 agencies, 3 years): the platform vs a DuckDB floor and pandas.
## 10M rows: .venv/bin/python bench/run.py --rows 10000000
bench: setup
	$(BIN)/python bench/run.py --rows 1000000

## Write the demo deliveries again (deterministic) into data/landing.
demo: setup
	$(BIN)/cxw demo --out data/landing

## Remove what builds make: the warehouse, published files, audit pages, Spark data, Dagster's home,
## dbt's target and logs. Never data/landing: the delivered files are kept as delivered.
clean:
	@if [ -d data ]; then find data -mindepth 1 -maxdepth 1 ! -name landing -exec rm -rf {} +; fi
	rm -rf .dagster_home dbt/target dbt/logs

## DESTRUCTIVE: delete every delivered file in data/landing (agencies' originals; make demo writes the demo ones).
clean-landing:
	rm -rf data/landing
