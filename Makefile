# numaspread: build, test, lint, bench.
GO       ?= go
BIN      := bin/numaspread
PKGS     := ./...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build test lint bench demo fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/numaspread

# make test: every unit, property, mock-runtime and CLI test.
test: build
	$(GO) test -count=1 $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# make bench: allocation benchmarks (docs/performance.md records the figures).
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(BENCHFLAGS) ./policy/

# make fuzz: a short run of every fuzz target (FUZZTIME=1m for longer).
FUZZTIME ?= 10s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg 2>/dev/null | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# make demo: the plugin and an embedded NRI runtime on a built-in 4-node machine.
demo: build
	./$(BIN) demo

clean:
	rm -rf bin

# make e2e: the real-runtime end-to-end test on this machine (root): a private
# containerd 2.x + runc + CRI with NRI, the plugin, pods created through crictl.
# Tools are built once into test/e2e/.cache (E2E_CACHE). make e2e-numa: the
# same inside a QEMU guest with 2 NUMA nodes. Both end with "N passed, M failed"
# (or a SKIP line when the machine cannot run them). E2EFLAGS: e.g. -v -keep.
E2E_CACHE  ?= test/e2e/.cache
E2E_RUNNER := $(E2E_CACHE)/e2e-runner
E2EFLAGS   ?=

.PHONY: e2e e2e-numa e2e-runner

e2e-runner:
	@mkdir -p $(E2E_CACHE)
	$(GO) build -o $(E2E_RUNNER) ./test/e2e/runner

# The image of make image runs there as the DaemonSet's pod of E2E_DEPLOY.
E2E_DEPLOY ?= deploy/kubernetes/overlays/metrics
e2e: image e2e-runner
	$(E2E_RUNNER) host -plugin $(BIN) -image $(IMAGE_TAR) -deploy $(E2E_DEPLOY) -cache $(E2E_CACHE) $(E2EFLAGS)

e2e-numa: build e2e-runner
	$(E2E_RUNNER) numa -plugin $(BIN) -cache $(E2E_CACHE) $(E2EFLAGS)

# make image: bin/numaspread-image.tar, an OCI image of the static binary (one
# layer, runs `numaspread run` as root, see deploy/Dockerfile for why), built
# without a container engine by deploy/mkimage. Load it on a node with
#   ctr -n k8s.io images import bin/numaspread-image.tar                 (containerd)
#   skopeo copy oci-archive:bin/numaspread-image.tar containers-storage:$(IMAGE)   (CRI-O)
# (ctr takes the name from the tarball), or push it with any OCI tool. The
# binary's version (metrics.Version: numaspread_build_info, /state, the
# start-up log) is the image's tag, IMAGE_VERSION.
IMAGE     ?= ghcr.io/numaspread/numaspread:0.1.0
IMAGE_TAR ?= bin/numaspread-image.tar
IMAGE_VERSION ?= $(lastword $(subst :, ,$(IMAGE)))
.PHONY: image
image:
	CGO_ENABLED=0 $(GO) build -trimpath \
	  -ldflags='-s -w -X github.com/numaspread/numaspread/metrics.Version=$(IMAGE_VERSION)' \
	  -o $(BIN) ./cmd/numaspread
	SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)} \
	  $(GO) run ./deploy/mkimage --binary $(BIN) --name $(IMAGE) --out $(IMAGE_TAR)

# make test-churn: the model-based churn with faults (test/churn, see
# docs/reliability.md) on every synthetic machine, in-process and as the
# binary killed with SIGKILL, plus a short scale run. The seed is
# CHURN_SEED (default: today's date, so CI rotates; the log prints it and
# the command that replays a failure). CHURN_OPS: operations per machine.
# FULL=1: also the 100 000-operation scale run with up to 1 000 live
# containers (the whole FULL=1 run took 12 min 21 s on two cores, see
# docs/reliability.md). CHURN_SCALE_OPS: the short scale run's operations.
CHURN_OPS ?= 4000
CHURN_SCALE_OPS ?= 5000
CHURN_SEED ?= $(shell date -u +%Y%m%d)
.PHONY: test-churn
test-churn:
	@echo "churn seed $(CHURN_SEED), $(CHURN_OPS) operations per machine$(if $(FULL), + the full scale run)"
	CHURN_SEED=$(CHURN_SEED) CHURN_OPS=$(CHURN_OPS) CHURN_BINARY=1 \
	  $(if $(FULL),CHURN_FULL=1,CHURN_SCALE_OPS=$(CHURN_SCALE_OPS)) \
	  $(GO) test -count=1 -timeout 90m -v -run '^TestChurn' ./test/churn/
