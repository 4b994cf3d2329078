# The two commands of the README (and CONTRIBUTING.md): `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
# staticcheck at an exact version (the module proxy serves it; `go run`
# builds it once into the build cache).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test compose-test demo bench services stop vet udf vendor-console

# Starts the private services (installing what is missing), checks gofmt,
# go vet and staticcheck, runs every test against the services, stops them
# again, and fails when any check or test fails. The services' env sets
# ROWGEAR_INTEGRATION=1: a missing service then fails the integration
# tests instead of skipping them (plain `go test ./...` without the
# services runs the unit tests and skips the rest; internal/testenv).
test:
	@set -e; eval "$$(scripts/services start)"; \
	trap 'scripts/services stop' EXIT; \
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }; \
	$(GO) vet ./...; \
	$(GO) vet -tags compose ./examples/stack/compose/; \
	$(GO) run $(STATICCHECK) ./...; \
	$(GO) test -count=1 -timeout 20m ./...

# The docker-compose stack for real (examples/stack/compose, build tag
# compose): builds the images, starts the stack, writes rows, restarts and
# kills services and counts what the handlers got, then `down -v`. Needs a
# Docker API (DOCKER_HOST) and docker-compose; .ci/run brings them up.
compose-test:
	$(GO) test -tags compose -count=1 -timeout 30m -v ./examples/stack/compose/

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

# Re-fetches the console's vendored htmx and uPlot at their exact versions
# (internal/console/static/vendor/README); needs npm.
vendor-console:
	scripts/vendor-console
