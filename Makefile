# ecr-ptc — see README.md. `make help` lists the targets.

GO        ?= go
BIN       := bin
TOOLS     := $(BIN)/tools
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(TOOLS)/golangci-lint
TEST_TIMEOUT ?= 40m
FUZZTIME  ?= 20s
FUZZ_PKGS ?= ./...

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build ecr-ptc, docker-credential-ecr-ptc and ecr-ptc-token into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/ecr-ptc ./cmd/docker-credential-ecr-ptc ./cmd/docker-credential-ecr-ptc/ecr-ptc-token

.PHONY: demo
demo: ## Run the demo: a local ECR, the mirror shim, and containerd pulling public images through them
	$(GO) run ./test/cmd/demo

.PHONY: deps
deps: $(GOLANGCI_LINT) ## Install what the tests need: apt packages, containerd 2.x, golangci-lint (as root)
	bash .ci/install-deps

.PHONY: test
test: ## Run go vet and every test with the race detector (daemon tests need root and `make deps`)
	$(GO) vet ./...
	$(GO) test -race -timeout $(TEST_TIMEOUT) ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run gofmt and golangci-lint
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: the files above need formatting'; exit 1; }
	$(GOLANGCI_LINT) run ./...

.PHONY: check
check: deps lint test ## What CI runs: install dependencies, lint, test

.PHONY: fuzz
fuzz: ## Run every fuzz target in FUZZ_PKGS (default ./...) for FUZZTIME each (default 20s)
	@for pkg in $$($(GO) list $(FUZZ_PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

.PHONY: bench
bench: ## Run the benchmarks; each prints ratios measured side by side in one run
	GO=$(GO) bash packaging/install-tools.sh ecr-login
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m ./bench/...

.PHONY: package
package: ## Build dist/ecr-ptc_<version>-1_<amd64|arm64>.deb and dist/ecr-ptc-<version>-1.<x86_64|aarch64>.rpm with nfpm
	bash packaging/install-tools.sh
	GO=$(GO) bash packaging/build.sh

.PHONY: image
image: ## Build the multi-arch (amd64, arm64) container image as an OCI layout in dist/image/
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)} \
		$(GO) run ./packaging/image -out dist/image -archive dist/ecr-ptc-image.tar -version $(VERSION)

$(GOLANGCI_LINT):
	@mkdir -p $(TOOLS)
	GOBIN=$(abspath $(TOOLS)) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION)

.PHONY: clean
clean: ## Remove bin/
	rm -rf $(BIN)
