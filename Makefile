# Two commands set everything up on a fresh machine:
#   make dev    run the receiver locally (moto for SQS, cargo lambda watch for Lambda)
#   make test   run every check and test
# Tools come from PyPI into .venv (requirements-dev.txt); crates from crates.io.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
TOOLS := $(VENV)/.installed
PYTHON ?= python3
EVENT ?= events/v3-message-created.json
INVOKE_PORT ?= 9000

.PHONY: tools dev invoke queue test lint sign-events clean

## tools: install cargo-lambda and moto[server] into .venv
tools: $(TOOLS)

$(TOOLS): requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## dev: run the function under the Lambda emulator, forwarding to a local SQS queue
dev: $(TOOLS)
	scripts/dev.sh

## invoke: send a sample API Gateway event to `make dev` (EVENT=events/....json)
invoke: $(TOOLS)
	$(VENV)/bin/cargo-lambda lambda invoke --invoke-address 127.0.0.1 \
		--invoke-port $(INVOKE_PORT) --data-file $(EVENT) nylas-webhook-sqs

## queue: print, and remove, the messages `make dev` has forwarded
queue: $(TOOLS)
	$(VENV)/bin/python scripts/local_queue.py show

## test: formatting, lints, unit, integration and doc tests
test: $(TOOLS) lint
	@mkdir -p target
	cargo test --all-targets 2>&1 | tee target/test.log
	cargo test --doc 2>&1 | tee -a target/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

## sign-events: re-sign events/*.json with the sample secret after editing them
sign-events:
	cargo run --quiet --example sign-event

clean:
	cargo clean
	rm -rf $(VENV) .local
