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
	@# Colour only on a terminal (and not under NO_COLOR): a pipe or a log gets plain text.
	@if [ -t 1 ] && [ -z "$${NO_COLOR:-}" ]; then on=$$'\033[36m' off=$$'\033[0m'; else on= off=; fi; \
	grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) \
		| awk -v on="$$on" -v off="$$off" 'BEGIN{FS=":.*?## "}{printf "  %s%-12s%s %s\n", on, $$1, off, $$2}'

$(STAMP): clients/python/pyproject.toml service/pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt -e ./clients/python -e ./service
	touch $(STAMP)

venv: $(STAMP) ## Create the virtual environment with the server, client and tools

$(BUF):
	npm install --no-audit --no-fund --silent

gen: $(STAMP) ## Generate Python stubs (+ .pyi) into clients/python and the API reference (docs/api) from protos/
	PATH="$(abspath $(BIN)):$$PATH" $(PY) -m grpc_tools.protoc -I protos \
		--python_out=$(GEN_OUT) --mypy_out=$(GEN_OUT) \
		--grpc_python_out=$(GEN_OUT) --mypy_grpc_out=$(GEN_OUT) $(PROTOS)
	$(PY) -m tools.api_reference docs/api/reference.md

check-gen: gen ## Fail if the committed stubs or API reference differ from what protos/ generates
	@git diff --exit-code -- $(GEN_OUT)/eid docs/api || { echo "stubs or API reference are stale: run 'make gen' and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- $(GEN_OUT)/eid docs/api)" || { echo "untracked generated files: run 'make gen' and commit"; exit 1; }

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

# Java stubs and SDK (clients/java), built with Debian's grpc-java (the Maven
# registry is out of reach): protoc + grpc_java_plugin, then javac against the
# jars in /usr/share/java. google.rpc comes from the venv's googleapis-common-protos
# (Debian's proto-google-common-protos 1.16 lacks ErrorInfo).
JAVA_DIR := clients/java
JAVA_BUILD := $(JAVA_DIR)/build
JAVA_STAMP := $(JAVA_BUILD)/.built
JAVA_SRC := $(shell find $(JAVA_DIR)/src $(JAVA_DIR)/examples -name '*.java' 2>/dev/null)
JAVA_TOOLS := java javac protoc grpc_java_plugin
JAVA_RUN_JARS := protobuf grpc-api grpc-context grpc-core grpc-stub grpc-protobuf \
	grpc-protobuf-lite grpc-netty guava perfmark-api gson netty-buffer netty-codec \
	netty-codec-http netty-codec-http2 netty-codec-socks netty-common netty-handler \
	netty-handler-proxy netty-resolver netty-transport
# Compile-time annotations only: javax.annotation.Generated on the gRPC stubs,
# Error Prone's on grpc-java's own classes (javac warns without them).
JAVA_COMPILE_JARS := $(JAVA_RUN_JARS) geronimo-annotation-1.3-spec error_prone_annotations
java_cp = $(subst $(eval) ,:,$(patsubst %,/usr/share/java/%.jar,$(1)))
# The apt packages that provide the above (.ci/run installs them).
JAVA_APT := openjdk-17-jdk-headless protobuf-compiler protobuf-compiler-grpc-java-plugin \
	libprotobuf-java libgrpc-java libnetty-java libperfmark-java libgoogle-gson-java \
	libguava-java liberror-prone-java libgeronimo-annotation-1.3-spec-java

$(JAVA_STAMP): $(STAMP) $(PROTOS) $(JAVA_SRC)
	@rm -rf $(JAVA_BUILD) && mkdir -p $(JAVA_BUILD)/gen $(JAVA_BUILD)/classes
	@echo "protoc --java_out --grpc-java_out: $(PROTOS) google/rpc/{status,error_details}.proto"
	@rpc="$$($(PY) -c 'import google.rpc.status_pb2 as m, pathlib; print(pathlib.Path(m.__file__).parents[2])')" && \
	protoc -I protos -I "$$rpc" --plugin=protoc-gen-grpc-java="$$(command -v grpc_java_plugin)" \
		--java_out=$(JAVA_BUILD)/gen --grpc-java_out=$(JAVA_BUILD)/gen \
		$(PROTOS) google/rpc/status.proto google/rpc/error_details.proto
	@echo "javac (Java 8 bytecode) $(JAVA_BUILD)/gen, then -Xlint:all -Werror $(JAVA_SRC)"
	@javac --release 8 -encoding UTF-8 -nowarn -d $(JAVA_BUILD)/classes \
		-cp $(call java_cp,$(JAVA_COMPILE_JARS)) $$(find $(JAVA_BUILD)/gen -name '*.java')
	@javac --release 8 -encoding UTF-8 -Xlint:all,-options -Werror -d $(JAVA_BUILD)/classes \
		-cp $(JAVA_BUILD)/classes:$(call java_cp,$(JAVA_COMPILE_JARS)) $(JAVA_SRC)
	@printf '%s' '$(call java_cp,$(JAVA_RUN_JARS))' > $(JAVA_BUILD)/runtime-classpath
	@touch $@

java-client: ## Java stubs + SDK + examples into clients/java/build (JDK and Debian's grpc-java)
	@missing="$$(for t in $(JAVA_TOOLS); do command -v $$t >/dev/null || printf ' %s' $$t; done; \
		for j in $(JAVA_COMPILE_JARS); do test -e /usr/share/java/$$j.jar || printf ' %s.jar' $$j; done)"; \
	if [ -n "$$missing" ]; then \
		echo "java-client: missing$$missing (apt-get install $(JAVA_APT))"; \
		if [ -n "$(JAVA_OPTIONAL)" ]; then echo "java-client: skipped; the Java interop test will skip"; exit 0; fi; \
		exit 1; \
	fi; \
	$(MAKE) --no-print-directory $(JAVA_STAMP)

# Node/TypeScript client (clients/node, its own package and lock): ts-proto
# stubs generated from protos/ at build time (not committed), then tsc.
NODE_DIR := clients/node
NODE_DEPS := $(NODE_DIR)/node_modules/.installed
NODE_STAMP := $(NODE_DIR)/dist/.built
NODE_SRC := $(shell find $(NODE_DIR)/src $(NODE_DIR)/examples $(NODE_DIR)/test -name '*.ts' -not -path '*/gen/*' 2>/dev/null)

$(NODE_DEPS): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(NODE_STAMP): $(NODE_DEPS) $(PROTOS) $(NODE_SRC) $(NODE_DIR)/buf.gen.yaml $(NODE_DIR)/tsconfig.json
	cd $(NODE_DIR) && npm run --silent build
	@touch $@

node-client: ## Node/TypeScript stubs + client + example into clients/node/dist (node and npm)
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "node-client: node or npm is missing (apt-get install nodejs npm)"; \
		if [ -n "$(NODE_OPTIONAL)" ]; then echo "node-client: skipped; the Node interop test will skip"; exit 0; fi; \
		exit 1; \
	fi; \
	$(MAKE) --no-print-directory $(NODE_STAMP)

# Outside CI, a machine without a JDK (or Node) still runs the rest of the suite.
test: JAVA_OPTIONAL = $(if $(filter true,$(CI)),,1)
test: NODE_OPTIONAL = $(if $(filter true,$(CI)),,1)
# Test processes (pytest-xdist); TEST_WORKERS=0 runs the suite in this one.
TEST_WORKERS ?= 2
test: $(STAMP) check-gen lint java-client node-client ## Run lint and the whole test suite (unit, integration on SQLite and PostgreSQL, end-to-end)
	$(BIN)/pytest -n $(TEST_WORKERS) --durations=15

run: export EID_OUTBOX_FILE ?= var/outbox.log
run: export EID_CONSOLE_SENDER ?= true
run: $(STAMP) gen ## Generate stubs, migrate, load the demo registry and serve on $EID_LISTEN (embedded SQLite)
	$(BIN)/eid-server init-dev
	$(BIN)/eid-server migrate
	$(BIN)/eid-server load-demo
	@echo "Serving on $(EID_LISTEN). In another terminal: source .venv/bin/activate, then follow README.md's walkthrough."
	@# The clients default to 127.0.0.1:50051: elsewhere, say where to point them.
	@target=$$(echo "$(EID_LISTEN)" | sed -e 's/^0\.0\.0\.0:/127.0.0.1:/' -e 's/^\[::\]:/[::1]:/'); \
	case "$$target" in 127.0.0.1:50051|localhost:50051) ;; \
	*) echo "The clients' default address is 127.0.0.1:50051; point them here first: export EID_TARGET=$$target";; esac
	$(BIN)/eid-server serve

bench: $(STAMP) ## Each RPC's throughput and latency as ratios to a bare echo and a bare durable write, with targets; the registry at a million people
	$(PY) -m bench

bench-tracing: $(STAMP) ## Telemetry's cost: eid with traces and metrics exported (OTLP) beside eid without, ratios on/off
	$(PY) -m bench.tracing

soak: $(STAMP) ## Long runs: 100 SIGKILLs under mixed load per database, 30 during outbox deliveries, 16 operator processes changing keys at once; not in make test
	EID_SOAK=1 $(BIN)/pytest -m soak -s

clean: ## Remove the virtual environment and local data
	rm -rf $(VENV) var node_modules $(NODE_DIR)/node_modules $(NODE_DIR)/dist $(NODE_DIR)/src/gen $(JAVA_BUILD)

.PHONY: help venv gen check-gen buf-lint buf-breaking lint fmt test run bench bench-tracing clean soak java-client node-client
