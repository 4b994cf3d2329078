# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go

.PHONY: test compose-test demo bench services stop vet udf

# Starts the private services (installing what is missing), runs every test
# against them, stops them again, and fails when any test fails.
test:
	@set -e; eval "$$(scripts/services start)"; \
	trap 'scripts/services stop' EXIT; \
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }; \
	$(GO) vet ./...; \
	$(GO) test -count=1 -timeout 20m ./...

# The docker-compose stack for real (examples/blog/compose, build tag
# compose): builds the images, starts the stack, writes rows, restarts and
# kills services and counts what the handlers got, then `down -v`. Needs a
# Docker API (DOCKER_HOST) and docker-compose; .ci/run brings them up.
compose-test:
	$(GO) test -tags compose -count=1 -timeout 30m -v ./examples/blog/compose/

# The demo without Docker (scripts/demo): starts the services, migrates,
# runs binlogbridge and dbworker in the background and the demo writer.
# `scripts/demo stop` stops the background processes.
demo:
	scripts/demo

# Measures rowgear against its ceilings (cmd/bench): starts the services
# if needed and leaves them running (others may use them; `make stop`).
# BENCHFLAGS passes flags, e.g. BENCHFLAGS='--rows 50000 --json run.json'.
bench:
	@set -e; eval "$$(scripts/services start)"; \
	$(GO) run ./cmd/bench $(BENCHFLAGS)

services:
	scripts/services start

stop:
	scripts/services stop

vet:
	$(GO) vet ./...
