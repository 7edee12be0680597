GO ?= go
PKGS := ./...

.PHONY: run test test-faults fuzz audit build lint bench clean deploy-rules deploy-check

# A count of executions, not a duration: go1.26's fuzz coordinator can fail
# a run with "context deadline exceeded" as a duration ends (go.dev/issue/75804).
FUZZTIME ?= 50000x

## run: build bin/quizstream and start the whole service (embedded NATS, migrations, demo content); ctrl-C drains it and exits 0
# ctrl-C at a terminal signals the whole foreground process group, and GNU
# make always ends by a SIGINT it receives (status 130), whatever its recipe
# does. So the recipe's shell runs dev as a job of its own (set -m): dev alone
# is in the foreground and gets the ctrl-C, drains and exits 0, and so does
# make. The shell ignores SIGINT (dev inherits that, and Go's signal.Notify
# takes the signal back); the trailing exit keeps bash from exec-ing dev in
# the shell's place, which would skip the job control.
run: build
	@trap "" INT; set -m 2>/dev/null; bin/quizstream dev; exit $$?

## test: every test, against a real PostgreSQL and real JetStream servers
test:
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

## test-faults: the fault suite: steady load with a fault injected, several minutes
test-faults:
	$(GO) test -count=1 -tags faults -run '^TestFault' -timeout 30m -v ./test/faults/suite

## fuzz: each fuzz target for FUZZTIME executions (50000x), one after another
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeAttemptRequest$$' -fuzztime $(FUZZTIME) ./api
	$(GO) test -run '^$$' -fuzz '^FuzzGrade$$' -fuzztime $(FUZZTIME) ./api
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCursor$$' -fuzztime $(FUZZTIME) ./api
	$(GO) test -run '^$$' -fuzz '^FuzzCursorRoundTrip$$' -fuzztime $(FUZZTIME) ./api
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMatchesEncodingJSON$$' -fuzztime $(FUZZTIME) ./api
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeAt$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzEventRoundTrip$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzAttemptID$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzHashAnswers$$' -fuzztime $(FUZZTIME) ./events
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMatchesEncodingJSON$$' -fuzztime $(FUZZTIME) ./events

## audit: staticcheck, gosec and (when its database is reachable) govulncheck
audit:
	bash .ci/audit

## build: the quizstream binary, in bin/ (its commit stamped where git can tell it: quizstream version)
build:
	$(GO) build -buildvcs=auto -o bin/quizstream ./cmd/quizstream

## lint: gofmt and go vet
lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

## bench: the production-like stack against the baseline, then the exam, checker-outage and backlog phases, about 30-35 minutes; writes bench/results/<date>.md and .json
bench:
	$(GO) run ./bench/cmd/stackbench

## deploy-rules: promtool check and test of the alert rules (installs promtool when missing and root)
deploy-rules:
	bash .ci/rules

## deploy-check: compose.yaml's process set on this machine (3 clustered nats-servers, migrate, stream apply at R3, 2 api, 2 worker, the checker) under a short load, the stream leader killed and restarted
deploy-check:
	$(GO) run ./deploy/cmd/deploycheck

clean:
	rm -rf bin .quizstream
