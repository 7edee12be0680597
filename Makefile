GO ?= go
PKGS := ./...

.PHONY: run test test-faults build lint bench clean

## run: build and start the whole service (embedded NATS, migrations, demo content)
run:
	$(GO) run ./cmd/quizstream dev

## test: every test, against a real PostgreSQL and real JetStream servers
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

## test-faults: the fault suite: steady load with a fault injected, several minutes
test-faults:
	$(GO) test -count=1 -tags faults -run '^TestFault' -timeout 30m -v ./test/faults/suite

## build: the quizstream binary, in bin/
build:
	$(GO) build -o bin/quizstream ./cmd/quizstream

## lint: gofmt and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: the Go benchmarks (not part of test)
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin .quizstream
