# promadapter — see README.md. Everything a test needs is built or installed by test/tools/deps.sh
# and cached outside the clone (keyed by version) in $${XDG_CACHE_HOME:-$$HOME/.cache}/promadapter.
GO        ?= go
BIN       := bin/promadapter
VERSION   ?= $(shell git describe --tags --match 'v*' 2>/dev/null || echo v0.1.0-dev.$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
LDFLAGS   := -X k8s.io/component-base/version.gitVersion=$(VERSION)
E2E_FLAGS ?=

.PHONY: all build test test-unit test-e2e demo lint deps bench clean fuzz

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/promadapter

# Unit and end-to-end tests: what CI runs.
test: lint test-unit test-e2e

# -race always: the adapter serves concurrent requests from shared, compiled state.
test-unit:
	$(GO) test -race -count=1 ./cmd/... ./pkg/... ./internal/... ./test/fixture/... ./test/bench/

deps:
	bash test/tools/deps.sh

# End-to-end: real etcd + kube-apiserver (+ kube-controller-manager), real Prometheus 2.x and 3.x, real kubectl.
test-e2e: build deps
	PROMADAPTER_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -p 1 -tags e2e -timeout 45m $(E2E_FLAGS) ./test/...

# A local demo cluster with Prometheus (sample data) and the adapter on its embedded default config.
demo: build deps
	$(GO) run ./test/cmd/demo -adapter $(CURDIR)/$(BIN)

bench: build deps
	bash test/bench/run.sh

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzObjectQuery -fuzztime 30s ./pkg/naming/
	$(GO) test -run '^$$' -fuzz FuzzSelectorMatchers -fuzztime 30s ./pkg/naming/
	$(GO) test -run '^$$' -fuzz FuzzLabelValues -fuzztime 30s ./pkg/naming/
	$(GO) test -run '^$$' -fuzz FuzzDecodeQuery -fuzztime 30s ./pkg/promclient/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/...

clean:
	rm -rf bin
