# slipway — `make help` lists the targets.
SHELL := /bin/bash
export CARGO_TARGET_DIR ?= /var/cache/slipway-target

.PHONY: help test lint fmt

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

test: ## Format check, clippy, every test (needs the services of tests/services.sh)
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace

fmt: ## Format the code
	cargo fmt --all
