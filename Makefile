# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: test demo bench services stop vet udf

# Starts the private services (installing what is missing), runs every test
# against them, stops them again, and fails when any test fails.
test:
	@set -e; eval "$$(scripts/services start)"; \
	trap 'scripts/services stop' EXIT; \
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }; \
	$(GO) vet ./...; \
	$(GO) test -count=1 -timeout 20m ./...

# The demo without Docker (scripts/demo): starts the services, migrates,
# runs binlogbridge and dbworker in the background and the demo writer.
# `scripts/demo stop` stops the background processes.
demo:
	scripts/demo

services:
	scripts/services start

stop:
	scripts/services stop

vet:
	$(GO) vet ./...
