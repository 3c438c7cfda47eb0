# Thin wrappers over the `ppx` CLI. Every target creates .venv and installs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PPX    := $(BIN)/ppx
# Empty: ppx's own default, demo/ in the worlds folder (PPX_WORLDS_DIR, data/worlds).
WORLD  ?=

.PHONY: setup demo test test-all lint format bench serve serve-decisions serve-portal bento mlflow-ui mlflow-server clean

setup: $(STAMP)

# Reinstall when the dependency list or the pinned versions change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(PPX) demo $(if $(WORLD),--out $(WORLD))

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q --durations=15

test-all: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(PPX) bench world --json docs/bench/world.json

serve: $(STAMP)
	$(PPX) serve

serve-decisions: $(STAMP)
	$(PPX) serve --decisions --port 3001

# The shopper's pages alone on port 3002 (also mounted at /portal by serve-decisions).
serve-portal: $(STAMP)
	$(PPX) serve --portal --port 3002

# The deployable model service: the ppx wheel, then a Bento of serving/ (offline).
bento: $(STAMP)
	rm -f dist/ppx-*.whl
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w dist .
	$(BIN)/bentoml build -f serving/bentofile.yaml .

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///mlflow/mlflow.db --default-artifact-root mlflow/artifacts --port 5000

# A shared tracking server: runs and registry on PostgreSQL (PPX_MLFLOW_DB_URL, else a
# local cluster under data/postgres), artifacts under mlflow/server-artifacts.
MLFLOW_PORT ?= 5000
mlflow-server: $(STAMP)
	$(PPX) mlflow-server --port $(MLFLOW_PORT)

clean:
	rm -rf $(VENV) .pytest_cache reports
