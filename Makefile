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
