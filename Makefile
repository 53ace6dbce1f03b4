# The few commands a user types. `make repro` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
PORT ?= 5000

.PHONY: setup repro test lint format ui server preset bench lock

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"

# Installs exactly the locked versions, then the package itself (editable, no extra deps).
# Bytecode is compiled once here: where PYTHONDONTWRITEBYTECODE is set (these machines set
# it), Python would otherwise recompile TensorFlow's sources in every stage, ~8 s each.
$(VENV)/.installed: requirements.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(VENV)/.installed

repro: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The model tests again on JAX: model and training code use Keras 3 APIs only, so the code
# that trains here on TensorFlow also trains on JAX (a GPU's backend); this proves it.
# pytest's exit code 5 means it collected no tests: not a failure of the code.
test: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest || [ $$? -eq 5 ]
	KERAS_BACKEND=jax $(BIN)/python -m pytest tests/test_model.py -q || [ $$? -eq 5 ]

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# MLflow UI on the project store, bound to localhost: `make ui PORT=5001` for another port.
ui: setup
	$(BIN)/mlflow ui --host 127.0.0.1 --port $(PORT) \
	  --backend-store-uri "sqlite:///$(CURDIR)/mlflow.db" \
	  --default-artifact-root "$(CURDIR)/mlartifacts"

# MLflow tracking server for a team, on 127.0.0.1:$(PORT): PostgreSQL backend (a project-local
# cluster in .mlflow-server/, or the database MLFLOW_BACKEND_URI names), artifacts proxied.
# Clients: export MLFLOW_TRACKING_URI=http://127.0.0.1:$(PORT) (README, "Team use").
server: setup
	$(BIN)/python -m nextframe.server --port $(PORT)

# Speed and memory claims, each measured against the seed in one run (last line: ratio <x>).
bench: setup
	$(BIN)/python benchmarks/preprocess_memory.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/rollout_speed.py
	$(BIN)/python benchmarks/store_contention.py

# Rewrite params.yaml with a preset from presets/ (validated first): `make preset NAME=seed`.
preset: setup
	$(BIN)/python -m nextframe.presets $(NAME)

# Re-lock after editing dependencies in pyproject.toml.
lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 -o requirements.lock
