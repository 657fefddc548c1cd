# Two commands set everything up on a fresh machine:
#   make dev    run the receiver locally (moto for SQS and Secrets Manager, cargo lambda watch)
#   make test   run every check and test
# Tools come from PyPI into .venv (requirements-dev.txt); crates from crates.io.
# `make` alone lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
VENV := .venv
TOOLS := $(VENV)/.installed
PYTHON ?= python3
EVENT ?= events/v3-message-created.json
# make dev's ports and queue; invoke, queue and secret LOCAL=1 talk to the same ones.
SQS_PORT ?= 4566
INVOKE_PORT ?= 9000
QUEUE ?= nylas-webhooks
export SQS_PORT INVOKE_PORT QUEUE
ARCH ?= arm64
FUZZ_SECONDS ?= 120
# SAM CLI: no telemetry, and cargo-lambda and zig from .venv on its PATH.
SAM_BIN ?= $(VENV)/bin/sam
SAM := SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(SAM_BIN)

.PHONY: help imports tools dev invoke post queue dead-letters forget consume replay secret revoke-previous deploy logs test lint template build bench coldstart coldstart-consumer load fuzz mutants sign-events clean
.DEFAULT_GOAL := help

## help: list the targets (this)
help:
	@sed -n 's/^## \([a-z-]*\): \(.*\)/  make \1\t\2/p' $(MAKEFILE_LIST) | expand -t 22

## tools: install cargo-lambda, moto[server], the SAM CLI and cfn-lint-serverless into .venv
tools: $(TOOLS)

# Each step says what it does: the first install takes a minute or two, from PyPI.
$(TOOLS): requirements-dev.txt
	@echo "tools: creating the virtualenv $(VENV) ..."
	@$(PYTHON) -m venv $(VENV)
	@echo "tools: installing cargo-lambda, moto, the SAM CLI and cfn-lint from PyPI (requirements-dev.txt) ..."
	@$(VENV)/bin/pip install --disable-pip-version-check -r requirements-dev.txt \
		| grep --line-buffered -E '^(Collecting|Successfully installed)' | sed -u 's/^/  pip: /' \
		|| { echo "tools: pip could not install requirements-dev.txt (see above)" >&2; exit 1; }
	@touch $@
	@echo "tools: done"

## dev: run the receiver: the function under the Lambda emulator, a local SQS and Secrets Manager (SQS_PORT, INVOKE_PORT, QUEUE)
dev: $(TOOLS)
	@$(VENV)/bin/python scripts/dev.py

# The helpers of `make dev` ask whether it runs (standard library only) before they install
# anything: with nothing running they answer at once.

## invoke: send a sample API Gateway event to `make dev`; fails unless the answer is 2xx (EVENT=events/....json)
invoke:
	@$(PYTHON) scripts/dev.py listening invoke
	@$(MAKE) --no-print-directory --quiet tools
	@$(VENV)/bin/python scripts/dev.py invoke $(EVENT)

## post: sign a body with `make dev`'s secret and POST it to the function URL; fails unless the answer is 2xx (BODY=file.json)
post:
	@$(PYTHON) scripts/dev.py listening invoke
	@$(MAKE) --no-print-directory --quiet tools
	@$(VENV)/bin/python scripts/dev.py post "$(BODY)"

## queue: print, and remove, the messages `make dev` has forwarded
queue:
	@$(PYTHON) scripts/dev.py listening sqs
	@$(MAKE) --no-print-directory --quiet tools
	@SQS_ENDPOINT=http://127.0.0.1:$(SQS_PORT) $(VENV)/bin/python scripts/local_aws.py show

## dead-letters: print, and remove, what went to `make dev`'s dead-letter queue (after 5 receives, as deployed)
dead-letters:
	@$(PYTHON) scripts/dev.py listening sqs
	@$(MAKE) --no-print-directory --quiet tools
	@SQS_ENDPOINT=http://127.0.0.1:$(SQS_PORT) $(VENV)/bin/python scripts/local_aws.py show-dead-letters

## forget: empty `make consume`'s idempotency table, so the consumer runs the next delivery of any notification again
forget:
	@$(PYTHON) scripts/dev.py listening sqs
	@$(MAKE) --no-print-directory --quiet tools
	@SQS_ENDPOINT=http://127.0.0.1:$(SQS_PORT) $(VENV)/bin/python scripts/local_aws.py forget

## consume: run the example consumer against `make dev`'s queue, with a local DynamoDB: each notification processed once, duplicates skipped (CONSUME_PORT)
consume:
	@$(PYTHON) scripts/dev.py listening sqs
	@$(MAKE) --no-print-directory --quiet tools
	@SQS_ENDPOINT=http://127.0.0.1:$(SQS_PORT) $(VENV)/bin/python scripts/consume.py

## replay: send the archived notifications received FROM..TO back to the queue, once more through the consumer (TYPE=, GRANT=, DRY_RUN=1, RATE=, QUEUE=; LOCAL=1 for make dev's)
replay:
	@if [ -n "$(LOCAL)" ]; then $(PYTHON) scripts/dev.py listening sqs; fi
	@$(MAKE) --no-print-directory --quiet tools
	@LOCAL=$(LOCAL) REPLAY_QUEUE=$(if $(filter file,$(origin QUEUE)),,$(QUEUE)) SQS_ENDPOINT=http://127.0.0.1:$(SQS_PORT) \
		$(VENV)/bin/python scripts/replay.py

## secret: store the webhook secret, read from the terminal (the stack and region samconfig.toml saved, or STACK=<name> AWS_REGION=<region>; LOCAL=1 for make dev's)
secret:
	@if [ -n "$(LOCAL)" ]; then $(PYTHON) scripts/dev.py listening sqs; fi
	@$(MAKE) --no-print-directory --quiet tools
	@LOCAL=$(LOCAL) STACK=$(STACK) SQS_ENDPOINT=http://127.0.0.1:$(SQS_PORT) \
		$(VENV)/bin/python scripts/secret.py

## revoke-previous: stop the secret stored before the current one from verifying (the stack and region samconfig.toml saved, or STACK=<name> AWS_REGION=<region>; LOCAL=1 for make dev's)
revoke-previous:
	@if [ -n "$(LOCAL)" ]; then $(PYTHON) scripts/dev.py listening sqs; fi
	@$(MAKE) --no-print-directory --quiet tools
	@LOCAL=$(LOCAL) STACK=$(STACK) SQS_ENDPOINT=http://127.0.0.1:$(SQS_PORT) \
		$(VENV)/bin/python scripts/secret.py revoke-previous

## deploy: sam deploy --guided for the architecture make build built, with the tools from .venv on its PATH (RANDOM_PATH=1 puts a random segment in the URL when none is saved; every saved setting is kept)
deploy: $(TOOLS)
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" RANDOM_PATH=$(RANDOM_PATH) \
		ARCH=$(if $(filter file,$(origin ARCH)),,$(ARCH)) $(VENV)/bin/python scripts/deploy.py $(SAM_BIN)

## logs: follow the deployed functions' log lines (the stack and region samconfig.toml saved, or STACK=<name> AWS_REGION=<region>; FILTER=<text>)
logs: $(TOOLS)
	$(SAM) logs $$($(VENV)/bin/python scripts/samconfig.py stack) --tail $(if $(FILTER),--filter '$(FILTER)')

## test: formatting, lints, template checks, unit, property, integration, doc and make dev tests
test: $(TOOLS) lint
	@mkdir -p target && : > target/test.log
	$(MAKE) --no-print-directory template
	NYLAS_INTEGRATION=1 cargo test --workspace --all-targets 2>&1 | tee -a target/test.log
	cargo test --workspace --doc 2>&1 | tee -a target/test.log
	$(VENV)/bin/python tests/dev_test.py 2>&1 | tee -a target/test.log
	$(VENV)/bin/python tests/imports_test.py 2>&1 | tee -a target/test.log
	$(VENV)/bin/python tests/team_crate_test.py 2>&1 | tee -a target/test.log
	@awk '/^test result:/ { p += $$4; f += $$6 } END { printf "tests: %d passed, %d failed\n", p, f }' target/test.log

## lint: cargo fmt --check and clippy, warnings as errors
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(PYTHON) scripts/imports.py
	@# The library crates as crates.io would take them (metadata, files); publishing is a maintainer's step.
	cargo package -p nylas-sqs-contract -p nylas-webhook-consumer --allow-dirty --no-verify --quiet

## imports: each crate's deepest chain of imports (at most 6 modules from its entry), and no cycle
imports:
	$(PYTHON) scripts/imports.py

## template: AWS's linters and the consistency tests on template.yaml
template: $(TOOLS)
	$(SAM) validate --lint --region us-east-1
	$(VENV)/bin/cfn-lint --append-rules cfn_lint_serverless.rules -- template.yaml
	@mkdir -p target
	$(VENV)/bin/python tests/template_test.py 2>&1 | tee -a target/test.log

## build: `sam build` for ARCH (arm64 or x86_64); leaves .aws-sam/build/ReceiverFunction/bootstrap and ConsumerFunction/bootstrap
build: $(TOOLS)
	@if [ "$(ARCH)" = arm64 ] && ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then \
		echo "build: the Rust target aarch64-unknown-linux-gnu is not installed." >&2; \
		echo "       Add it with 'rustup target add aarch64-unknown-linux-gnu', or build for x86_64:" >&2; \
		echo "       make build ARCH=x86_64 (make deploy then deploys x86_64)." >&2; \
		exit 1; \
	fi
	@# sam build shows nothing of cargo's progress: a line at least every 30 s says it works.
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PYTHON) scripts/progress.py build \
		$(SAM_BIN) build --parameter-overrides Architecture=$(ARCH)
	@$(PYTHON) scripts/artifact.py .aws-sam/build/ReceiverFunction/bootstrap
	@$(PYTHON) scripts/artifact.py .aws-sam/build/ConsumerFunction/bootstrap

## bench: criterion benchmarks of the core path beside a bare HMAC, and the budget check
bench:
	cargo bench --bench core
	$(PYTHON) scripts/bench_budget.py

# The straightforward receiver (benches/peer): its own workspace, Cargo's default release profile.
PEER := target/peer/release/peer

## coldstart: start-up, CPU per invocation and memory against a hello-world function (and BEFORE=<binary of an earlier build>, or BEFORE=peer for the straightforward receiver)
coldstart: $(TOOLS)
	@# Built apart: an example brings the dev-dependencies, whose features must not reach the function.
	cargo build --release --bin nylas-webhook-sqs
	cargo build --release --example hello
	$(if $(filter peer,$(BEFORE)),cargo build --release --manifest-path benches/peer/Cargo.toml --target-dir target/peer)
	$(if $(filter peer,$(BEFORE)),PEER=1 ENV_SECRET=1) $(VENV)/bin/python scripts/coldstart.py \
		target/release/nylas-webhook-sqs target/release/examples/hello $(if $(filter peer,$(BEFORE)),$(PEER),$(BEFORE))

## coldstart-consumer: the consumer's start-up and CPU per notification against a hello-world SQS function, idempotency off and on (moto's DynamoDB), and its DynamoDB calls per notification (and BEFORE=<binary of an earlier build>)
coldstart-consumer: $(TOOLS)
	cargo build --release -p nylas-webhook-consumer --bin nylas-webhook-consumer
	cargo build --release -p nylas-webhook-consumer --example hello_sqs
	$(VENV)/bin/python scripts/coldstart.py consumer target/release/nylas-webhook-consumer target/release/examples/hello_sqs $(BEFORE)

## load: the function at RATE POSTs/s for DURATION seconds with SQS healthy, then down, then back: throughput, p50/p99, CPU, what reached the queue
load: $(TOOLS)
	cargo build --release --bin nylas-webhook-sqs
	$(VENV)/bin/python scripts/load.py target/release/nylas-webhook-sqs

## fuzz: libFuzzer over the core path for FUZZ_SECONDS (cargo-fuzz from crates.io into .local)
fuzz:
	@test -x .local/bin/cargo-fuzz || cargo install --locked --root .local cargo-fuzz
	# cargo-fuzz passes nightly-only flags; RUSTC_BOOTSTRAP lets the stable compiler take them.
	PATH="$(CURDIR)/.local/bin:$$PATH" RUSTC_BOOTSTRAP=1 cargo fuzz run request -- \
		-max_total_time=$(FUZZ_SECONDS) -max_len=65536 -rss_limit_mb=2048

## mutants: cargo-mutants over the code that decides an answer or a store; fails on a missed mutant mutants-excused.txt does not excuse (cargo-mutants from crates.io into .local)
mutants:
	@test -x .local/bin/cargo-mutants || cargo install --locked --root .local cargo-mutants
	$(PYTHON) scripts/mutants.py

## sign-events: sign events/*.json again after editing them (SECRET=<secret>, the sample secret by default; ARGS=<event files>)
sign-events:
	@SECRET=$(SECRET) $(PYTHON) scripts/sign_events.py $(ARGS)

## clean: remove every build, the tools and the local state
clean:
	cargo clean
	rm -rf $(VENV) .local .aws-sam
