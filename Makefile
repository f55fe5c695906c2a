# eid — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf
GEN_OUT := clients/python
PROTOS := $(shell find protos -name '*.proto')

export EID_LISTEN ?= 127.0.0.1:50051

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): clients/python/pyproject.toml service/pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -e ./clients/python -e ./service
	touch $(STAMP)

venv: $(STAMP) ## Create the virtual environment with the server, client and tools

$(BUF):
	npm install --no-audit --no-fund --silent

gen: $(STAMP) ## Generate Python stubs (+ .pyi) from protos/ into clients/python
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m grpc_tools.protoc -I protos \
		--python_out=$(GEN_OUT) --mypy_out=$(GEN_OUT) \
		--grpc_python_out=$(GEN_OUT) --mypy_grpc_out=$(GEN_OUT) $(PROTOS)

check-gen: gen ## Fail if the committed stubs differ from what protos/ generates
	@git diff --exit-code -- $(GEN_OUT)/eid || { echo "stubs are stale: run 'make gen' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(GEN_OUT)/eid)" || { echo "untracked generated files: run 'make gen' and commit"; exit 1; }

buf-lint: $(BUF) ## Lint the protos with buf (STANDARD and COMMENTS rules)
	$(BUF) lint

# What buf-breaking compares protos/ with: the newest v* tag behind HEAD, or,
# before the first release, the commit that introduced protos/ (every change
# since it was additive: buf breaking passes between each pair of commits).
BUF_BASELINE := bcbbac654cffd70947e6a4bafd5ead48d8f11c4a

buf-breaking: $(BUF) ## Fail on a breaking change to protos/ since the last v* tag (or the first contract)
	@ref=$$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null || echo $(BUF_BASELINE)); \
	commit=$$(git rev-parse --verify --quiet "$$ref^{commit}") || { \
		echo "buf-breaking: $$ref is not in this clone's history (a shallow clone?): run 'git fetch --unshallow --tags'"; \
		exit 1; }; \
	echo "buf breaking protos against $$ref"; \
	$(BUF) breaking protos --against "$$(git rev-parse --path-format=absolute --git-common-dir)#ref=$$commit,subdir=protos"

lint: $(STAMP) buf-lint buf-breaking ## ruff + mypy (strict) + buf lint + buf breaking
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP) ## Format the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: $(STAMP) check-gen lint ## Run lint and the whole test suite (unit, integration on SQLite and PostgreSQL, end-to-end)
	$(BIN)/pytest

run: export EID_OUTBOX_FILE ?= var/outbox.log
run: export EID_CONSOLE_SENDER ?= true
run: $(STAMP) gen ## Generate stubs, migrate, load the demo registry and serve on $EID_LISTEN (embedded SQLite)
	$(BIN)/eid-server init-dev
	$(BIN)/eid-server migrate
	$(BIN)/eid-server load-demo
	@echo "Serving on $(EID_LISTEN). In another terminal: source .venv/bin/activate, then follow README.md's walkthrough."
	$(BIN)/eid-server serve

bench: $(STAMP) ## Each RPC's throughput and latency as ratios to a bare echo and a bare durable write, with targets
	$(PY) -m bench

soak: $(STAMP) ## Long crash runs (30 SIGKILLs during outbox deliveries); not part of make test
	EID_SOAK=1 $(BIN)/pytest -m soak -s

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var node_modules

.PHONY: help venv gen check-gen buf-lint buf-breaking lint fmt test run bench clean soak
