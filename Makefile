# runboat, serverless edition. `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

export GOTOOLCHAIN := local
MODULES := shared functions jobs kubefiles
CACHE_DIR ?= $(or $(RUNBOAT_CACHE_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/runboat)
export RUNBOAT_CACHE_DIR := $(CACHE_DIR)

GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(CACHE_DIR)/tools/golangci-lint-$(GOLANGCI_LINT_VERSION)
LOCALCLUSTER := go run ./shared/testenv/cmd/localcluster
TERRAFORM_TOOLCHAIN := bash shared/testenv/terraform/toolchain.sh
LOCALRUN := $(CACHE_DIR)/bin/localrun

.PHONY: help
help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: run
run: ## Run the system on the local cluster (builds what it needs); Ctrl-C stops it
	@# Built and exec'ed, not go run: the go command exits 1 on a Ctrl-C,
	@# even when the program it runs stops cleanly and exits 0.
	@go build -o $(LOCALRUN) ./functions/cmd/localrun && exec $(LOCALRUN)

.PHONY: replay
replay: ## Send more sample deliveries to the running local system
	@go run ./functions/cmd/localrun replay

.PHONY: test
test: lint cluster ## Run every check and test (the command CI runs)
	@failed=""; \
	for m in $(MODULES); do \
	  echo "== go test $$m"; \
	  (cd $$m && GOWORK=off go test -count=1 -timeout 20m ./...) || failed="$$failed $$m"; \
	done; \
	$(MAKE) --no-print-directory fuzz FUZZ_SHORT=1 || failed="$$failed fuzz"; \
	echo "== terraform-check"; \
	$(MAKE) --no-print-directory terraform-check || failed="$$failed terraform"; \
	if [ -n "$$failed" ]; then echo "FAILED in:$$failed"; exit 1; fi

# The figures of `make bench`: the function's on BENCH_BUILDS builds, the
# jobs' passes on BENCH_JOB_BUILDS (a comma-separated list of sizes).
BENCH_BUILDS ?= 10000
BENCH_JOB_BUILDS ?= 50000

.PHONY: bench
bench: cluster ## Run the benchmarks on the local cluster; ends with one `bench:` line per figure
	@figures=$$(mktemp); trap 'rm -f "$$figures"' EXIT; export RUNBOAT_BENCH_FIGURES=$$figures; \
	(cd shared && GOWORK=off go test -run '^$$' -bench . -benchtime 200x ./render/) && \
	(cd functions && RUNBOAT_BENCH_FUNCTION_BUILDS=$(BENCH_BUILDS) GOWORK=off go test -run '^$$' -bench . -benchtime 1x -timeout 60m ./bench/) && \
	(cd jobs && RUNBOAT_BENCH_BUILDS=$(BENCH_JOB_BUILDS) GOWORK=off go test -run '^$$' -bench Pass -benchtime 3x -timeout 60m .) && \
	echo "== figures" && cat "$$figures"

# `make soak SOAK=30m`: TestSoak's compressed day for that long (the test
# command runs it for 40 s); its figures are the `soak:` lines.
SOAK ?= 30m

.PHONY: soak
soak: cluster ## Run the soak (deliveries, console actions, jobs killed, API faults) for SOAK (default 30m); ends with its figures
	@cd jobs && RUNBOAT_SOAK_DURATION=$(SOAK) GOWORK=off go test -count=1 -v -run '^TestSoak$$' -timeout 0 . 2>&1 | grep -E '^(--- |ok|FAIL|PASS)|soak:|invariants|_test\.go:'

# The fuzz targets, as module:package:target:inputs. Their seeds (in the
# code and in testdata/fuzz) run with every `go test`; `make fuzz` runs
# each for FUZZTIME; `make test` (FUZZ_SHORT=1) runs each for its number of
# inputs, a count rather than a duration: Go 1.26's fuzzer may fail a
# target with "context deadline exceeded" when a duration ends on a busy
# machine (golang/go#75804, fixed in Go 1.27), and a count has no deadline.
FUZZ_TARGETS := shared:./model:FuzzRef:20000 shared:./model:FuzzSlug:20000 \
  shared:./config:FuzzRepoRules:20000 shared:./render:FuzzRender:200 \
  functions:./webhook:FuzzDelivery:200 functions:./console:FuzzFilter:20000
FUZZTIME ?= 1m
FUZZ_SHORT ?=
# How long the fuzzer may shrink each new interesting input (Go's default,
# a minute, is spent mostly on the slow targets: a render).
FUZZMINIMIZETIME ?= 3s

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (default 1m); a failure is kept in its testdata/fuzz
	@for t in $(FUZZ_TARGETS); do \
	  IFS=: read -r m p f n <<< "$$t"; \
	  d=$(FUZZTIME); [ -z "$(FUZZ_SHORT)" ] || d="$${n}x"; \
	  echo "== fuzz $$m $$p $$f ($$d)"; \
	  (cd $$m && GOWORK=off go test -run '^$$' -fuzz "^$$f$$" -fuzztime $$d -fuzzminimizetime $(FUZZMINIMIZETIME) $$p) || exit 1; \
	done

.PHONY: package
package: ## Build the Lambda zips and the jobs' OCI image into dist/, reproducibly; prints the image digest
	@cd shared && GOWORK=off go run ./cmd/package -root .. -out ../dist

.PHONY: cluster
cluster: ## Build (first time) and start the local cluster (control plane, fake nodes, one real node; RUNBOAT_REAL_NODE=off: fake only); no-op if running
	@$(LOCALCLUSTER) up

.PHONY: cluster-down
cluster-down: ## Stop the local cluster, leaving no process, mount, interface or iptables chain behind
	@$(LOCALCLUSTER) down

.PHONY: cluster-status
cluster-status: ## Say whether the local control plane runs
	@$(LOCALCLUSTER) status

.PHONY: cluster-env
cluster-env: ## Print the exports that point kubectl at the local cluster
	@$(LOCALCLUSTER) env

.PHONY: terraform-toolchain
terraform-toolchain: ## Build OpenTofu and the kubernetes provider from the Go module proxy into the cache (first time)
	@$(TERRAFORM_TOOLCHAIN)

# The tests of shared/testenv/terraform run when the toolchain is named in
# the environment (a plain go test skips them); the toolchain build waits
# for one already under way (.ci/run starts it at its beginning).
.PHONY: terraform-check
terraform-check: cluster ## Check terraform/ offline: fmt, init from the mirror, validate, apply and destroy of examples/local
	@toolchain=$$($(TERRAFORM_TOOLCHAIN) env) && eval "$$toolchain" && \
	cd shared && GOWORK=off go test -count=1 -timeout 20m ./testenv/terraform/

.PHONY: terraform-check-aws
terraform-check-aws: ## Validate the AWS modules and plan examples/aws: needs the AWS provider in the mirror (terraform/README.md)
	@toolchain=$$($(TERRAFORM_TOOLCHAIN) env) && eval "$$toolchain" && \
	cd shared && RUNBOAT_TF_AWS=1 GOWORK=off go test -count=1 -timeout 20m -run 'AWS' -v ./testenv/terraform/

.PHONY: lint
lint: $(GOLANGCI_LINT) ## gofmt, go vet and golangci-lint on every module
	@unformatted=$$(gofmt -l $(MODULES)); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	@for m in $(MODULES); do \
	  echo "== lint $$m"; \
	  (cd $$m && GOWORK=off go vet ./... && GOWORK=off $(GOLANGCI_LINT) run ./...); \
	done

$(GOLANGCI_LINT):
	@echo "Installing golangci-lint $(GOLANGCI_LINT_VERSION) into $(CACHE_DIR)/tools"
	@mkdir -p $(CACHE_DIR)/tools/bin
	@# A download from the module proxy can stall: bound each try, try again.
	@for i in 1 2 3; do \
	  GOBIN=$(CACHE_DIR)/tools/bin timeout 900 go install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) && break; \
	  [ $$i -lt 3 ] || exit 1; echo "go install failed or stalled (try $$i of 3); trying again"; \
	done
	@mv $(CACHE_DIR)/tools/bin/golangci-lint $@
