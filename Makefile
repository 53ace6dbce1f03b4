# The few commands a user types. `make repro` and `make test` work on a fresh clone.
# GPU=1 (`make repro GPU=1`, `make test GPU=1`) installs JAX's CUDA build from
# requirements-gpu.lock into .venv-gpu instead, and every stage runs on JAX.
PYTHON ?= python3
UV_VERSION := 0.13.9
PORT ?= 5000
ifeq ($(GPU),1)
VENV := .venv-gpu
LOCK := requirements-gpu.lock
export KERAS_BACKEND ?= jax
else
VENV := .venv
LOCK := requirements.lock
# The demo page's extra (Gradio), for `make demo` and `make test`, never for `make repro`:
# requirements-demo.lock pins everything requirements.lock pins, at the same versions, plus
# Gradio's packages, so installing it on top adds packages and changes none.
DEMO_LOCK := requirements-demo.lock
DEMO_INSTALLED := $(VENV)/.demo-installed
endif
BIN := $(VENV)/bin
# The `dvc plots` page template, where `.dvc/config` (plots.html_template) points.
PLOTS_PAGE := .dvc/plots_page.html

.PHONY: setup repro test test-fast lint format ui server serve demo preset tune tune-best \
  tune-dashboard bench bench-gpu gpu-bundle lock

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "uv==$(UV_VERSION)"

# Installs exactly the locked versions, then the package itself (editable, no extra deps).
# Bytecode is compiled once here: where PYTHONDONTWRITEBYTECODE is set (these machines set
# it), Python would otherwise recompile TensorFlow's sources in every stage, ~8 s each.
$(VENV)/.installed: $(LOCK) pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --compile-bytecode --python $(BIN)/python $(LOCK)
	$(BIN)/uv pip install --python $(BIN)/python --no-deps -e .
	touch $@

# vega, vega-lite and vega-embed from an installed package, inlined: the charts of
# `dvc plots show` render with no internet (DVC's own page loads them from a CDN).
$(PLOTS_PAGE): $(VENV)/.installed src/nextframe/ops/plots_page.py
	$(BIN)/python -m nextframe.ops.plots_page $@

setup: $(VENV)/.installed $(PLOTS_PAGE)

$(DEMO_INSTALLED): $(DEMO_LOCK) $(VENV)/.installed
	$(BIN)/uv pip install --compile-bytecode --python $(BIN)/python -r $(DEMO_LOCK)
	touch $@

repro: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro

# The tests, their files spread over one pytest-xdist worker more than the cores (at most 4):
# a test also waits on the real dvc, mlflow, server or browser it started, which the extra
# worker fills. On 2 cores with the files longest first, 3 workers took 12.1 minutes from a
# fresh clone and 4 took 13.1: the suite is CPU-bound (1,280 and 1,390 CPU-s), and a fourth
# process on two cores costs more CPU than it fills. With GPU=1 every test runs on
# JAX; on CPU, tests/test_jax_backend.py reruns the model tests on JAX. pytest's exit code 5
# means it collected no tests: not a failure of the code. Each test process computes on one
# thread (TensorFlow's pools, BLAS): pools sized to the machine in four workers at once spent
# their CPU spinning and switching (a tiny `dvc repro` alone: 42 s of CPU, 35 s on one thread).
# Files start longest first (tests/conftest.py), not xdist's most-tests-first: a long file
# started last kept one core idle for its last minutes.
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n + 1 : 4 )))
ONE_THREAD := TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 OMP_NUM_THREADS=1
test: setup $(DEMO_INSTALLED)
	$(ONE_THREAD) PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -n $(TEST_WORKERS) \
	  --dist loadfile --no-loadscope-reorder || [ $$? -eq 5 ]

# The unit tests alone, in about a minute and a half: no stage, dvc, server, pip or browser is
# started (those tests are marked e2e, browser or integration).
test-fast: setup
	$(ONE_THREAD) $(BIN)/python -m pytest -n auto --maxprocesses 4 --dist loadfile \
	  -m "not e2e and not browser and not integration"

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/lint-imports

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# MLflow UI on the project store, bound to localhost: `make ui PORT=5001` for another port,
# `make ui UI_STORE=../other-clone` for another store. It prints the address of the nextframe
# runs table. Telemetry off: the server would otherwise call the internet at start and when
# the page loads (its page loads nothing off-host).
UI_STORE ?= $(CURDIR)
ui: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_DISABLE_TELEMETRY=true $(BIN)/python -m nextframe.ops.ui \
	  --port $(PORT) --store "$(abspath $(UI_STORE))"

# The champion model (`models:/nextframe-convlstm@champion` in the project store, unless
# MLFLOW_TRACKING_URI names another) served on http://127.0.0.1:5001/invocations, in this
# environment: no conda or virtualenv is built. `make serve PORT=5002 MODEL=runs:/<id>/model`
# for another port or model; STORE= another clone's store. WORKERS scoring processes (each
# loads the model and answers one request at a time; default one per core) with one backend
# thread each, so they do not fight over the cores. Telemetry off, as for `make ui`.
STORE ?= $(CURDIR)
WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
serve: PORT = 5001
serve: MODEL = models:/nextframe-convlstm@champion
serve: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" MLFLOW_DISABLE_TELEMETRY=true \
	  MLFLOW_TRACKING_URI="$${MLFLOW_TRACKING_URI:-sqlite:///$(abspath $(STORE))/mlflow.db}" \
	  NEXTFRAME_BACKEND_THREADS=$(if $(filter 1,$(WORKERS)),0,1) \
	  $(CURDIR)/$(BIN)/mlflow models serve -m "$(MODEL)" --env-manager local \
	  --host 127.0.0.1 --port $(PORT) --workers $(WORKERS)

# The demo page on http://127.0.0.1:7860 (Gradio, nothing loaded off this machine): the
# pipeline's model and test split; `make demo MODEL=models:/nextframe-convlstm@champion`.
demo: PORT = 7860
demo: setup $(DEMO_INSTALLED)
	$(CURDIR)/$(BIN)/python -m nextframe.ops.demo $(if $(MODEL),--model "$(MODEL)") \
	  --port $(PORT)

# MLflow tracking server for a team, on 127.0.0.1:$(PORT): PostgreSQL backend (a project-local
# cluster in .mlflow-server/, or the database MLFLOW_BACKEND_URI names), artifacts proxied.
# Clients: export MLFLOW_TRACKING_URI=http://127.0.0.1:$(PORT) (README, "Team use").
server: setup
	$(BIN)/python -m nextframe.ops.server --port $(PORT)

# An Optuna study of the params in tune/space.yaml, each trial a DVC experiment up to train
# (README, "Tuning"): `make tune TRIALS=20`; run it in several shells or on several machines
# at once and they share the study. TUNE_STORAGE= the team's PostgreSQL for many machines.
# The data stages run first, once, so that no trial runs them again.
TRIALS ?= 10
TUNE_STORAGE ?= sqlite:///tune/study.db
STUDY ?= nextframe
tune: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dvc repro preprocess
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/nextframe tune --trials $(TRIALS) \
	  --storage "$(TUNE_STORAGE)" --study-name "$(STUDY)"

# The study's best trial: printed, its params written into params.yaml, pictures in tune/.
tune-best: setup
	$(BIN)/nextframe tune --best --storage "$(TUNE_STORAGE)" --study-name "$(STUDY)"

# optuna-dashboard on the study's storage, on http://127.0.0.1:8080 (its page is in the package).
tune-dashboard: PORT = 8080
tune-dashboard: setup
	$(BIN)/optuna-dashboard --host 127.0.0.1 --port $(PORT) "$(TUNE_STORAGE)"

# Speed and memory claims, each measured against the keras-io example in one run
# (last line: ratio <x>).
bench: setup
	$(BIN)/python benchmarks/preprocess_memory.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/rollout_speed.py
	$(BIN)/python benchmarks/fresh_vs_fixed.py
	$(BIN)/python benchmarks/store_contention.py
	$(BIN)/python benchmarks/ingest_memory.py
	$(BIN)/python benchmarks/codec_roundtrip.py
	$(BIN)/python benchmarks/serve_latency.py
	$(BIN)/python benchmarks/stage_start.py

# Throughput, FLOP utilisation and quality per GPU-minute of presets/gpu.yaml, on the GPU
# environment: `make bench-gpu GPU=1` (about 12 minutes on one H100 or H200).
bench-gpu: setup
	$(BIN)/python benchmarks/gpu_train.py --out benchmarks/gpu_train.json

# What `make bench-gpu` needs on a GPU machine with Python and JAX but no package index:
# gpu_bundle/ holds the wheels of the packages beyond JAX that the benchmark imports (the
# GPU lock's versions, no dependencies resolved, for GPU_PYTHON) and the digit pools; then, on
# that machine, from the repo root: benchmarks/gpu_device.sh (docs/gpu.md).
GPU_PYTHON ?= 3.12
GPU_BUNDLE_PACKAGES := keras namex optree pydantic pydantic-core annotated-types \
  typing-inspection typing-extensions pyyaml absl-py rich markdown-it-py mdurl pygments h5py \
  packaging
gpu-bundle: setup
	rm -rf gpu_bundle && mkdir -p gpu_bundle/wheels
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: -d gpu_bundle/wheels \
	  --python-version $(GPU_PYTHON) --platform manylinux_2_28_x86_64 \
	  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
	  $(foreach p,$(GPU_BUNDLE_PACKAGES),$(shell grep -i '^$(p)==' requirements-gpu.lock))
	$(BIN)/python benchmarks/gpu_train.py --write-digits gpu_bundle/digits.npz

# Rewrite params.yaml with a preset from presets/ (validated first): `make preset NAME=keras_io`.
preset: setup
	$(BIN)/python -m nextframe.presets $(NAME)

# Re-lock after editing dependencies in pyproject.toml: the CPU locks and the GPU lock. The
# demo lock is resolved first; the CPU and GPU locks are then held to its versions (-c), so
# the CPU lock is the demo lock less Gradio's packages, and the GPU lock has the same version
# of every package they share.
LOCK_FOR_LINUX := --python-version 3.11 --python-platform x86_64-manylinux_2_28
lock: $(BIN)/uv
	$(BIN)/uv pip compile pyproject.toml --extra cpu --extra dev --extra demo \
	  $(LOCK_FOR_LINUX) -o requirements-demo.lock
	$(BIN)/uv pip compile pyproject.toml --extra cpu --extra dev -c requirements-demo.lock \
	  $(LOCK_FOR_LINUX) -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra gpu --extra dev -c requirements-demo.lock \
	  $(LOCK_FOR_LINUX) -o requirements-gpu.lock
