# PawGle mesh. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
SERVICES := auth pets reports chat embeddings matcher notifier gateway
EDITABLES := -e libs/common $(foreach s,$(SERVICES),-e services/$(s))
STAMP := $(VENV)/.installed
PYPROJECTS := pyproject.toml libs/common/pyproject.toml $(foreach s,$(SERVICES),services/$(s)/pyproject.toml) requirements-dev.txt

.DEFAULT_GOAL := help

help: ## List every target with a one-line description
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

install: $(STAMP) ## Create .venv and install every service, libs/common and the dev tools

$(STAMP): $(PYPROJECTS)
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python >= 3.11)"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check "uv>=0.5,<1"
	$(UV) pip install --quiet --python $(PY) $(EDITABLES) -r requirements-dev.txt
	@touch $(STAMP)

run: install ## Start the bus, every service and the gateway on embedded defaults (PAWGLE_PORT, default 8000)
	$(VENV)/bin/pawgle-run

# Two processes (each its own nats-server and databases; a test file stays in one process): on 2 cores the
# suite's waits on the bus and on subprocesses overlap. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
test: install ## Run the whole test suite (add PAWGLE_TEST_MYSQL_URL=mysql+pymysql://... to include MySQL)
	$(PY) -m pytest -q --durations=25 -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/common/src $(foreach s,$(SERVICES),services/$(s)/src)

format: install ## Apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install ## Print the benchmark figures (events/s and latency, gateway overhead, auth, alerts)
	$(PY) -m bench

fuzz: install ## schemathesis (all checks) against every built service's OpenAPI (FUZZ_ARGS, e.g. --max-time 120)
	$(PY) -m fuzz $(FUZZ_ARGS)

eval: install ## Same-animal retrieval, generic vs identity model (EVAL_DATA=<identity>/<photo> folder; default dogfacenet-dev)
	$(PY) -m pawgle.embeddings.model.evaluate $(if $(EVAL_DATA),--data $(EVAL_DATA)) $(EVAL_ARGS)

# torch comes first and from pip, which takes this machine's CPU wheel; uv then finds it installed and adds
# only the rest of the training extra (an open torch range through uv would fetch a multi-GB CUDA build).
train-identity: install ## Train the identity head (CPU torch; ~40 min on the shared 2 cores, ~10 once descriptors are cached) and export it to ONNX
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(UV) pip install --quiet --python $(PY) -e 'services/embeddings[training]'
	$(PY) services/embeddings/training/train_identity.py $(TRAIN_ARGS)

clean: ## Remove the virtualenv and caches (keeps .data, your local data)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install run test lint format bench fuzz clean eval train-identity
