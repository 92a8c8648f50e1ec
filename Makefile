# Tombstone: the two set-up commands are `make demo` and `make test`.
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/tombstone-proxy/tombstone/internal/buildinfo.Version=$(VERSION) \
           -X github.com/tombstone-proxy/tombstone/internal/buildinfo.Revision=$(REVISION)

.PHONY: all build test check test-clients test-browser demo bench deps deps-clients deps-browser vet

all: build

deps:
	@scripts/ensure-postgres.sh

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/tombstone ./cmd/tombstone

vet:
	$(GO) vet ./...

# The fast lane: vet and the tests that need no PostgreSQL (-short skips
# the others: internal/pgtest and internal/buildtest skip under it).
check:
	$(GO) vet ./...
	$(GO) test -short -count=1 ./...

# Every test, against real PostgreSQL clusters the tests start themselves.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 45m ./...

# The client matrix (internal/clients): node-postgres, Sequelize, Knex,
# psycopg2, Django, SQLAlchemy, ActiveRecord and psql through Tombstone,
# compared with a hard-delete twin database. Installs the clients first;
# one that cannot be installed fails the run. -v: the log lists each
# client's version.
deps-clients:
	@scripts/ensure-clients.sh

test-clients: deps deps-clients
	$(GO) vet -tags clients ./internal/clients
	$(GO) test -tags clients -count=1 -timeout 20m -v ./internal/clients

# The console in a real browser (internal/consolebrowser): Debian's
# Chromium driven by playwright-core logs in, restores a row deleted
# through the proxy, and is refused a cross-site POST. Installs Chromium
# and playwright-core first. Screenshots of each page land in
# $(TOMBSTONE_BROWSER_OUT); UPDATE_SCREENSHOT=1 also refreshes
# docs/console-table.png.
TOMBSTONE_BROWSER_OUT ?= $(CURDIR)/bin/browser-test
deps-browser:
	@scripts/ensure-browser.sh

test-browser: deps build deps-browser
	$(GO) vet -tags browser ./internal/consolebrowser
	TOMBSTONE_BROWSER_OUT='$(TOMBSTONE_BROWSER_OUT)' $(GO) test -tags browser -count=1 -timeout 10m -v ./internal/consolebrowser

# Throwaway Postgres + demo schema + Tombstone in front; prints a DATABASE_URL.
# Built and run rather than `go run`: go run exits 1 after Ctrl-C even when
# the demo stopped cleanly, and make would report that as an error.
demo: deps build
	$(GO) build -o bin/tombstone-demo ./cmd/tombstone-demo
	bin/tombstone-demo --binary bin/tombstone

# pgbench through Tombstone against direct, ratios printed (see docs/benchmarks.md).
# Extra flags: make bench BENCH_FLAGS='--quick' (or --duration 20s --rounds 5 ...).
BENCH_FLAGS ?=
bench: deps build
	$(GO) run ./cmd/tombstone-bench --binary bin/tombstone $(BENCH_FLAGS)
