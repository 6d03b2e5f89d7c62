# slipway — `make help` lists the targets and the variables they read.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= /var/cache/slipway-target
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
# `make logs FUNCTION=listener` (listener, spawner, notifier, cleanup, build, api).
FUNCTION ?=
SINCE ?= 1h

FUNCTIONS := listener spawner notifier cleanup
TEMPLATE := cloudformation/slipway.yml
# The template's Code paths point here (relative to the template: ../target/lambda/...).
LAMBDA_DIR := target/lambda
PACKAGED := target/slipway.packaged.yml
VENV ?= /opt/slipway-venv
# Release builds of the zips keep their own target directory: a fat-LTO link takes minutes, and in the
# tests' directory it would hold cargo's lock that long.
LAMBDA_TARGET_DIR ?= /var/cache/slipway-target-lambda
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

.PHONY: help build test lint lint-template fmt package deploy destroy logs webhook-url secret

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
	@echo "  FUNCTION, SINCE  for logs: listener|spawner|notifier|cleanup|build|api, e.g. SINCE=10m"
	@echo "  AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_REGION: the AWS account and region"

build: ## Build the four Lambda zips (arm64) into target/lambda/<binary>/bootstrap.zip
	@for f in $(FUNCTIONS); do \
		echo "$(CARGO_LAMBDA) build --release --arm64 --output-format zip --lambda-dir $(LAMBDA_DIR) -p slipway-$$f"; \
		CARGO_TARGET_DIR=$(LAMBDA_TARGET_DIR) $(CARGO_LAMBDA) build --release --arm64 --output-format zip --lambda-dir $(LAMBDA_DIR) -p slipway-$$f || exit 1; \
	done

test: ## Format check, clippy, every test incl. cfn-lint and checkov (needs tests/services.sh and make build)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace

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
