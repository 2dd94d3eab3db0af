# sluice: `make test` runs every check and test; `make demo` runs a pipeline locally. Both set themselves up.

SHELL := /bin/bash
VENV := .venv
PYTHON ?= python3
TOOLS := $(VENV)/.installed-$(shell sha1sum tests/requirements.txt | cut -c1-12)

# Local runs never ask an EC2 metadata service for credentials.
export AWS_EC2_METADATA_DISABLED := true
export CARGO_TERM_COLOR ?= never

.PHONY: test demo build sam-build lint browser cli check-pipelines pipelines clean arm64

## test: format, lints, template lint, then every unit and integration test (moto_server on loopback, headless
## Chromium for the approval page).
test: $(TOOLS) browser lint
	mkdir -p target
	set -o pipefail; MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server cargo test --workspace --all-targets 2>&1 | tee target/test.log
	@awk '/^test result:/ { passed += $$4; failed += $$6 } END { printf "\n%d passed, %d failed\n", passed, failed }' target/test.log

## demo: a pipeline run against a local AWS (moto_server): state in DynamoDB, events through EventBridge rules.
demo: $(TOOLS)
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server cargo run --quiet -p sluice-integration --bin demo

## bench: the github-webhook function against moto over HTTP, release build: latency (median, p99) and AWS calls per
## push with 0 and with 20 executions held; then the criterion benches of the webhook's own work.
bench: $(TOOLS)
	MOTO_SERVER=$(CURDIR)/$(VENV)/bin/moto_server cargo run --quiet --release -p sluice-integration --bin bench -- $(PUSHES)
	cargo bench --quiet -p sluice --bench webhook

## lint: formatting, clippy, and the template (cfn-lint with the serverless rules, then SAM's own lint); offline.
lint: $(TOOLS)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(VENV)/bin/cfn-lint template.yaml -a cfn_lint_serverless.rules
	SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam validate --lint --template-file template.yaml

# The Lambda functions, and nothing else (not the CLI, the sandbox or the demo).
FUNCTIONS := $(patsubst functions/%/Cargo.toml,%,$(wildcard functions/*/Cargo.toml))
# cargo-lambda runs zig as `python3 -m ziglang`: the venv's python must come first.
LAMBDA_PATH := PATH=$(CURDIR)/$(VENV)/bin:$$PATH
MAX_ZIP_BYTES := 4194304
# The reconciler links every AWS client sluice uses, and runs on a schedule: no request waits for its cold start.
MAX_RECONCILER_ZIP_BYTES := 4718592

## build: each function for Lambda (arm64, release) as target/lambda/<function>/bootstrap.zip, with its size; fails
## if a zip reaches 4 MB (the reconciler: 4.5 MB).
build: $(TOOLS) arm64
	$(LAMBDA_PATH) cargo lambda build --release --arm64 --output-format zip $(addprefix -p ,$(FUNCTIONS))
	@status=0; for f in $(FUNCTIONS); do \
	  zip=target/lambda/$$f/bootstrap.zip; size=$$(stat -c %s $$zip) || exit 1; \
	  awk -v f=$$f -v size=$$size -v zip=$$zip 'BEGIN { printf "%-16s %6.2f MB  %s\n", f, size / 1048576, zip }'; \
	  max=$(MAX_ZIP_BYTES); if [ $$f = reconciler ]; then max=$(MAX_RECONCILER_ZIP_BYTES); fi; \
	  if [ $$size -ge $$max ]; then echo "  $$f is over its budget ($$max bytes)"; status=1; fi; \
	done; exit $$status

# SAM's build (BuildMethod: makefile, in source, see samconfig.toml): `sam build` runs `make build-<LogicalId>` with
# ARTIFACTS_DIR, and each function's bootstrap is the one `make build` packaged and the tests exercised.
# ApprovalRequestsFunction is the approval binary again (it mails the links to ApprovalFunction's URL).
SAM_FUNCTIONS := GitHubWebhookFunction=github-webhook ApprovalFunction=approval ApprovalRequestsFunction=approval \
  BuildEventsFunction=build-events DeployerFunction=deployer DeployEventsFunction=deploy-events \
  NotifierFunction=notifier HooksFunction=hooks ReconcilerFunction=reconciler
sam_binary = $(patsubst $(1)=%,%,$(filter $(1)=%,$(SAM_FUNCTIONS)))
build-%Function: build
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set: run sam build"; exit 2; }
	$(PYTHON) -m zipfile -e target/lambda/$(call sam_binary,$*Function)/bootstrap.zip $(ARTIFACTS_DIR)
	chmod 755 $(ARTIFACTS_DIR)/bootstrap

## sam-build: `sam build`, then a check that it packaged, for each function of the template, the bootstrap `make build`
## made.
sam-build: $(TOOLS)
	SAM_CLI_TELEMETRY=0 $(LAMBDA_PATH) sam build --template-file template.yaml
	@for pair in $(SAM_FUNCTIONS); do \
	  logical=$${pair%%=*}; binary=$${pair#*=}; \
	  $(PYTHON) -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("bootstrap"))' \
	    target/lambda/$$binary/bootstrap.zip | cmp -s - .aws-sam/build/$$logical/bootstrap \
	    || { echo "sam build's $$logical is not make build's $$binary"; exit 1; }; \
	  test -x .aws-sam/build/$$logical/bootstrap || { echo "$$logical's bootstrap is not executable"; exit 1; }; \
	  echo "$$logical: the bootstrap of target/lambda/$$binary/bootstrap.zip"; \
	done
	@test $$(grep -c 'BuildMethod: makefile' template.yaml) -eq $(words $(SAM_FUNCTIONS)) \
	  || { echo "template.yaml has functions SAM_FUNCTIONS does not list"; exit 1; }

arm64:
	@rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu

## cli: install the sluice command (into ~/.cargo/bin), as the README uses it.
cli:
	cargo install --locked --path infra/cli

## check-pipelines FILE=pipelines.toml: validate a definitions file; every error names pipeline, field and line.
check-pipelines:
	cargo run --quiet -p sluice-cli -- check $(or $(FILE),infra/pipelines.example.toml)

$(TOOLS): tests/requirements.txt
	test -x $(VENV)/bin/pip || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Debian's Chromium and ChromeDriver drive the approval page as a person would; installed once, as root or by sudo.
# CHROMEDRIVER (and CHROMIUM, default /usr/bin/chromium) name binaries installed some other way.
CHROMEDRIVER ?= chromedriver
export CHROMEDRIVER
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@command -v $(CHROMEDRIVER) >/dev/null || { \
	  command -v apt-get >/dev/null || { echo "install Chromium and ChromeDriver, or set CHROMEDRIVER"; exit 2; }; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

clean:
	cargo clean
	rm -rf $(VENV)

## pipelines FILE=pipelines.toml [STACK=name | TABLE=table]: check FILE, then publish it to the deployed stack (by
## default the stack named sluice).
pipelines:
	cargo run --quiet -p sluice-cli -- $(if $(TABLE),--table $(TABLE),$(if $(STACK),--stack $(STACK))) publish $(or $(FILE),pipelines.toml)
