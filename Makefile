# promadapter — see README.md. Everything a test needs is built or installed by test/tools/deps.sh
# and cached outside the clone (keyed by version) in $${XDG_CACHE_HOME:-$$HOME/.cache}/promadapter.
GO        ?= go
BIN       := bin/promadapter
VERSION   ?= $(shell git describe --tags --match 'v*' 2>/dev/null || echo v0.1.0-dev.$$(git rev-parse --short HEAD 2>/dev/null || echo unknown))
LDFLAGS   := -X k8s.io/component-base/version.gitVersion=$(VERSION)
E2E_FLAGS ?=

.PHONY: all build test test-unit test-e2e demo lint chart-lint deps bench clean fuzz

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/promadapter

# Unit and end-to-end tests: what CI runs.
test: lint test-unit test-e2e

# -race always: the adapter serves concurrent requests from shared, compiled state.
test-unit:
	$(GO) test -race -count=1 ./cmd/... ./pkg/... ./internal/... ./tools/... ./test/fixture/... ./test/bench/

deps:
	bash test/tools/deps.sh

# End-to-end: real etcd + kube-apiserver (+ kube-controller-manager), real Prometheus 2.x and 3.x, real kubectl.
test-e2e: build deps images
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

# Multi-platform OCI image layout at bin/images/promadapter, without a container daemon: each
# binary built as `make build` builds it, stripped (-s -w) as the Dockerfile's, then tools/imagebuild assembles the images and their index
# (docs/install.md, "Building the image"). Push it with crane or skopeo.
IMAGE_LAYOUT    := bin/images/promadapter
IMAGE_PLATFORMS ?= linux/amd64 linux/arm64 linux/riscv64
IMAGE_SOURCE    ?= https://github.com/promadapter/promadapter
IMAGE_REVISION  ?= $(shell git rev-parse HEAD 2>/dev/null)
IMAGE_CA_CERTS  ?= /etc/ssl/certs/ca-certificates.crt

.PHONY: images
images:
	@set -e; for p in $(IMAGE_PLATFORMS); do \
	  cmd="CGO_ENABLED=0 GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) build -trimpath -ldflags '-s -w $(LDFLAGS)' -o bin/platforms/$${p%/*}-$${p#*/}/promadapter ./cmd/promadapter"; \
	  echo "$$cmd"; eval "$$cmd"; \
	done
	$(GO) run ./tools/imagebuild -out $(IMAGE_LAYOUT) -version '$(VERSION)' -revision '$(IMAGE_REVISION)' -source '$(IMAGE_SOURCE)' -ca-certs '$(IMAGE_CA_CERTS)' \
	  $(foreach p,$(IMAGE_PLATFORMS),-binary $(p)=bin/platforms/$(subst /,-,$(p))/promadapter)

lint: chart-lint
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags e2e ./test/...

# The Helm chart: `helm lint --strict`, and `helm template` with the default values and with each API
# group switched off. helm comes from test/tools/deps.sh's cache (the script builds whatever test
# binary is missing, helm among them: about 2 minutes for helm, once per machine).
chart-lint:
	@out=$$(bash test/tools/deps.sh) && bin=$$(printf '%s\n' "$$out" | tail -n 1) && helm="$$bin/helm-$${HELM_VERSION:-v3.22.0}" && \
	echo "$$helm lint --strict deploy/chart/promadapter" && "$$helm" lint --strict deploy/chart/promadapter && \
	for set in "" apis.metrics=false apis.custom=false apis.external=false; do \
	  echo "$$helm template promadapter deploy/chart/promadapter --namespace promadapter $${set:+--set $$set}"; \
	  "$$helm" template promadapter deploy/chart/promadapter --namespace promadapter $${set:+--set $$set} >/dev/null || exit 1; \
	done

clean:
	rm -rf bin
