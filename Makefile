# htl front door. Every target builds .venv from constraints.txt first, so a fresh clone needs
# only Python 3.11 and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONFIG ?= configs/demo.yaml

.PHONY: help install demo demo-containers images push hpo-ui bench-hpo test test-slow test-gpu test-containers lint bench bench-predict bench-data compile mlflow-ui serve constraints clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade-strategy only-if-needed -c constraints.txt -e '.[dev]'
	touch $@

install: $(STAMP)  ## create .venv and install the pinned dependencies

demo: $(STAMP)  ## run the whole pipeline locally (kfp.local) on synthetic data
	$(BIN)/htl run --config $(CONFIG)

demo-containers: $(STAMP)  ## the demo with every step inside the CPU image (podman; builds it if missing)
	images/with-podman.sh $(BIN)/htl run --config $(CONFIG) --runner docker --image "$$(images/build.sh cpu)"

images: $(STAMP)  ## build the CPU (every step) and CUDA (hpo, train) images: images/build.sh
	images/build.sh all

TAG ?= $(shell git rev-parse --short=12 HEAD)
push:  ## push the images built at TAG to REGISTRY: make push REGISTRY=ghcr.io/acme
	@test -n "$(REGISTRY)" || { echo "make push: set REGISTRY=<registry/namespace>"; exit 2; }
	for flavor in cpu cuda; do \
		podman tag localhost/htl-$$flavor:$(TAG) $(REGISTRY)/htl-$$flavor:$(TAG) && \
		podman push $(REGISTRY)/htl-$$flavor:$(TAG) || exit 1; \
	done
	@echo "export HTL_IMAGE=$(REGISTRY)/htl-cpu:$(TAG) HTL_GPU_IMAGE=$(REGISTRY)/htl-cuda:$(TAG)"

test: $(STAMP)  ## run the test suite (fast, CPU)
	$(BIN)/pytest

test-slow: $(STAMP)  ## run the slow tests too
	$(BIN)/pytest -m 'not gpu and not containers'

test-gpu: $(STAMP)  ## run the tests that need a CUDA device
	$(BIN)/pytest -m gpu

test-containers: $(STAMP)  ## build the CPU image, run the demo DAG in it and in processes, compare
	images/with-podman.sh $(BIN)/pytest -m containers

lint: $(STAMP)  ## ruff, and the import contracts of docs/architecture.md (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

PEERS := .bench-peers

$(PEERS)/.installed: bench/requirements-peers.txt
	$(BIN)/python -m pip install --quiet --no-deps --target $(PEERS) -r bench/requirements-peers.txt
	touch $@

bench: $(STAMP) $(PEERS)/.installed  ## performance benchmarks (ratios measured side by side)
	PYTHONPATH=$(PEERS) $(BIN)/python -m bench
	$(BIN)/python -m bench.hpo

bench-predict: $(STAMP)  ## htl predict on 250k and 1M rows: rows/s and peak memory
	$(BIN)/python -m bench.predict

bench-data: $(STAMP)  ## data preparation only: 1M, 5M, 19M rows, time and peak memory
	$(BIN)/python -m bench.data_prep

CLUSTER_CONFIG ?= configs/cluster.yaml
compile: $(STAMP)  ## build/pipeline.yaml from CLUSTER_CONFIG (needs HTL_IMAGE), build/prediction.yaml
	$(BIN)/htl compile --config $(CLUSTER_CONFIG) --output build/pipeline.yaml
	$(BIN)/htl compile --pipeline prediction --output build/prediction.yaml

hpo-ui: $(STAMP)  ## open optuna-dashboard on the local studies (http://127.0.0.1:8080)
	$(BIN)/optuna-dashboard sqlite:///$(CURDIR)/.htl/optuna.db --host 127.0.0.1 --port 8080

bench-hpo: $(STAMP)  ## HPO with and without pruning, same budget: wall time and best value
	$(BIN)/python -m bench.hpo

mlflow-ui: $(STAMP)  ## open the MLflow UI on the local store (http://127.0.0.1:5000)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/.htl/mlflow.db \
		--default-artifact-root $(CURDIR)/.htl/mlartifacts --host 127.0.0.1 --port 5000

serve: $(STAMP)  ## serve models:/<register.name>@champion on http://127.0.0.1:5001 (CONFIG=...)
	$(BIN)/htl serve --config $(CONFIG)

constraints: $(STAMP)  ## re-pin constraints.txt from the current .venv
	{ $(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu//'; sed -n '/^# CUDA/,$$p' constraints.txt; } > constraints.tmp && mv constraints.tmp constraints.txt

clean:  ## remove local run outputs (keeps .venv)
	rm -rf .htl build
