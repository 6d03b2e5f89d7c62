# slipway — `make help` lists the targets and the variables they read.
SHELL := /bin/bash
# The directories .ci/paths chooses (a cache the user owns), unless set already.
SLIPWAY_PATHS := $(shell bash -c 'source .ci/paths && echo "$$CARGO_TARGET_DIR $$SLIPWAY_LAMBDA_TARGET_DIR $$SLIPWAY_VENV"')
export CARGO_TARGET_DIR ?= $(word 1,$(SLIPWAY_PATHS))
# Prerequisites run in order: the AWS targets check what is missing before anything slow starts.
.NOTPARALLEL:

# Variables (override on the command line: make deploy BUCKET=my-artifacts STACK_NAME=slipway)
STACK_NAME ?= slipway
# S3 bucket, in the stack's region, that receives the Lambda zips (`aws cloudformation package`).
BUCKET ?=
# First deploy: REPOSITORIES and IMAGE_NAMESPACE are required; later deploys keep the stack's values.
REPOSITORIES ?=
IMAGE_NAMESPACE ?=
# More template parameters, as `Key=Value` words, e.g. PARAMS='NotificationEmail=me@example.com'.
PARAMS ?=
# Name of the SSM parameter holding the webhook secret (the template's WebhookSecretParameter).
WEBHOOK_SECRET_PARAM ?= /slipway/webhook-secret
# `make logs FUNCTION=listener` (listener, spawner, notifier, tasks, build, api).
FUNCTION ?=
SINCE ?= 1h

FUNCTIONS := listener spawner notifier tasks
TEMPLATE := cloudformation/slipway.yml
# The template's Code paths point here (relative to the template: ../target/lambda/...).
LAMBDA_DIR := target/lambda
PACKAGED := target/slipway.packaged.yml
VENV ?= $(word 3,$(SLIPWAY_PATHS))
# Release builds of the zips keep their own target directory: a fat-LTO link takes minutes, and in the
# tests' directory it would hold cargo's lock that long.
LAMBDA_TARGET_DIR ?= $(word 2,$(SLIPWAY_PATHS))
# `make build PROFILE=lambda-ci`: CI's quick zips for the size check (see Cargo.toml).
PROFILE ?= release
# clippy's driver compiles the workspace's own crates during the test build (what `cargo clippy` does
# in check mode), so one compile serves clippy and the tests. CLIPPY_ARGS is how cargo-clippy hands
# `-D warnings` to the driver.
CLIPPY := RUSTC_WORKSPACE_WRAPPER="$$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver)" CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
NEXTEST := $(shell command -v cargo-nextest >/dev/null 2>&1 && echo yes)
CFN_LINT := $(shell command -v cfn-lint 2>/dev/null || echo $(VENV)/bin/cfn-lint)
CHECKOV := $(shell command -v checkov 2>/dev/null || echo $(VENV)/bin/checkov)
CARGO_LAMBDA := $(shell command -v cargo-lambda >/dev/null 2>&1 && echo cargo lambda || echo $(VENV)/bin/cargo-lambda lambda)
PREFLIGHT := bash cloudformation/preflight.sh
# preflight.sh reads these.
export BUCKET STACK_NAME WEBHOOK_SECRET_PARAM

# Single-quotes a value for the shell, so `$default` or spaces reach aws unchanged.
shq = '$(subst ','\'',$(1))'
OVERRIDES := $(if $(REPOSITORIES),$(call shq,Repositories=$(REPOSITORIES))) \
	$(if $(IMAGE_NAMESPACE),$(call shq,ImageNamespace=$(IMAGE_NAMESPACE))) \
	$(call shq,WebhookSecretParameter=$(WEBHOOK_SECRET_PARAM)) \
	$(foreach p,$(value PARAMS),$(call shq,$(p)))

.PHONY: help build test test-build test-run lint lint-template fmt package deploy destroy logs webhook-url secret

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'
	@echo
	@echo "Variables (make deploy BUCKET=... REPOSITORIES=... IMAGE_NAMESPACE=...):"
	@echo "  BUCKET           S3 bucket for the Lambda zips, in the stack's region (package, deploy)"
	@echo "  STACK_NAME       CloudFormation stack name (default slipway; also prefixes every resource)"
	@echo "  REPOSITORIES     owner/name list or globs to build (first deploy)"
	@echo "  IMAGE_NAMESPACE  registry/namespace images are pushed to, e.g. docker.io/acme (first deploy)"
	@echo "  PARAMS           more template parameters as Key=Value words, e.g. 'NotificationEmail=me@example.com'"
	@echo "  WEBHOOK_SECRET_PARAM  SSM name of the webhook secret (default /slipway/webhook-secret)"
	@echo "  FUNCTION, SINCE  for logs: listener|spawner|notifier|tasks|build|api, e.g. SINCE=10m"
	@echo "  AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_REGION: the AWS account and region"

build: ## Build the four Lambda zips (arm64) into target/lambda/<binary>/bootstrap.zip [PROFILE=release]
	CARGO_TARGET_DIR=$(LAMBDA_TARGET_DIR) $(CARGO_LAMBDA) build $(if $(filter release,$(PROFILE)),--release,--profile $(PROFILE)) --arm64 --output-format zip --lambda-dir $(LAMBDA_DIR) $(foreach f,$(FUNCTIONS),-p slipway-$(f))
	@# crates/stack's zip test holds the sizes against the limit for the profile they were built in.
	echo $(PROFILE) > $(LAMBDA_DIR)/profile

test: ## Format check, clippy and every test incl. cfn-lint and checkov (needs tests/services.sh and make build)
	cargo fmt --all --check
	$(MAKE) --no-print-directory test-build
	$(MAKE) --no-print-directory test-run

test-build: ## Compile every target once, with clippy's lints denied
	$(CLIPPY) cargo test --workspace --all-targets --no-run

test-run: ## Run the tests (cargo nextest when installed) and the doc tests
ifeq ($(NEXTEST),yes)
	$(CLIPPY) cargo nextest run --workspace
else
	$(CLIPPY) cargo test --workspace --no-fail-fast
endif
	$(CLIPPY) cargo test --workspace --doc

lint: ## fmt check, clippy, cfn-lint and checkov
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(MAKE) --no-print-directory lint-template

lint-template: ## cfn-lint and checkov on the CloudFormation template
	$(CFN_LINT) $(TEMPLATE)
	$(CHECKOV) -f $(TEMPLATE) --compact --quiet --skip-download

fmt: ## Format the code
	cargo fmt --all

package: ## Upload the zips to BUCKET and write target/slipway.packaged.yml
	$(PREFLIGHT) package
	$(MAKE) --no-print-directory build
	aws cloudformation package --template-file $(TEMPLATE) --s3-bucket $(call shq,$(BUCKET)) --s3-prefix $(call shq,$(STACK_NAME)) --output-template-file $(PACKAGED)

deploy: ## Build, package and deploy the stack, then print the webhook settings
	$(PREFLIGHT) deploy
	$(MAKE) --no-print-directory package
	aws cloudformation deploy --template-file $(PACKAGED) --stack-name $(call shq,$(STACK_NAME)) --capabilities CAPABILITY_IAM --no-fail-on-empty-changeset --parameter-overrides $(OVERRIDES)
	aws cloudformation describe-stacks --stack-name $(call shq,$(STACK_NAME)) --query 'Stacks[0].Outputs[?starts_with(OutputKey, `Webhook`)].[Description,OutputValue]' --output text

destroy: ## Delete the stack (CONFIRM=<stack name>); SSM parameters and the bucket stay
	$(PREFLIGHT) destroy
	@[ "$(CONFIRM)" = "$(STACK_NAME)" ] || { echo "make destroy: this deletes the stack $(STACK_NAME), its queues, logs and build history; run: make destroy CONFIRM=$(STACK_NAME)" >&2; exit 2; }
	aws cloudformation delete-stack --stack-name $(call shq,$(STACK_NAME))
	aws cloudformation wait stack-delete-complete --stack-name $(call shq,$(STACK_NAME))

logs: ## Follow a function's logs: make logs FUNCTION=listener [SINCE=10m]
	$(PREFLIGHT) logs $(call shq,$(FUNCTION))
	aws logs tail $(call shq,$(if $(filter build,$(FUNCTION)),/aws/codebuild/$(STACK_NAME),$(if $(filter api,$(FUNCTION)),/aws/apigateway/$(STACK_NAME)-webhooks,/aws/lambda/$(STACK_NAME)-$(FUNCTION)))) --follow --since $(call shq,$(SINCE))

webhook-url: ## Print the URL to paste into GitHub's webhook form
	$(PREFLIGHT) webhook-url
	aws cloudformation describe-stacks --stack-name $(call shq,$(STACK_NAME)) --query "Stacks[0].Outputs[?OutputKey=='WebhookUrl'].OutputValue" --output text

secret: ## Create the webhook secret in SSM (SecureString) and print it once
	$(PREFLIGHT) secret
	@# The secret goes to aws on stdin, never in argv; it is printed once, for GitHub's form.
	@secret=$$(openssl rand -hex 32) && \
	printf '{"Name":"%s","Type":"SecureString","Value":"%s","Description":"slipway webhook secret (one per line)"}' $(call shq,$(WEBHOOK_SECRET_PARAM)) "$$secret" \
		| aws ssm put-parameter --cli-input-json file:///dev/stdin >/dev/null && \
	echo "Created $(WEBHOOK_SECRET_PARAM). Paste this into GitHub's webhook form (Secret); it is not shown again:" && \
	echo "$$secret"
