# rotator — see README.md. Every target runs on a fresh clone without Docker.
SHELL := /bin/bash
STATE ?= .devstack
DEVSTACK := $(STATE)/bin/devstack
STATICCHECK_VERSION := v0.8.2
WORKFLOWCHECK_VERSION := v0.6.0
GO_TEST_FLAGS ?=
BENCH_RUNS ?= 5
# Concurrent rotations of the scale benchmark (the whole of make bench takes
# about 11 minutes here, most of it setting up and deleting N=1000).
BENCH_SCALE ?= 10,100,1000
# More pollers than the SDK's 2 let one worker keep up with hundreds of
# rotations at once (N=100 to grace, before local activities: 25 s with the
# defaults, 18-20 s with these).
BENCH_WORKER_FLAGS ?= --workflow-pollers 8 --activity-pollers 8

.PHONY: all deps build devstack demo demo-down test test-unit test-e2e chaos fuzz lint lint-docker replay-record bench clean

all: build

## deps: install with apt-get what the tests and the demo need and this machine
## lacks (PostgreSQL, openssl, chromium, ...); nothing when all is there
deps:
	scripts/deps.sh

## build: the worker and the starter CLI into bin/
build:
	go build -o bin/worker ./worker
	go build -o bin/starter ./starter
	go build -o bin/fakeproviders ./fakeproviders

$(DEVSTACK): $(shell find devstack -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.yaml' 2>/dev/null)
	cd devstack && go build -o ../$(DEVSTACK) .

## devstack: build and start the local stack (idempotent)
devstack: $(DEVSTACK)
	$(DEVSTACK) --state $(STATE) up

## demo: bring up the stack, run the worker and the provider stand-ins, apply the
## schedules, rotate one target of each kind into grace
demo: deps build devstack
	STATE=$(STATE) scripts/demo.sh

## demo-down: stop the worker, the provider stand-ins and everything devstack started
demo-down:
	STATE=$(STATE) scripts/demo.sh down
	@if [ -x $(DEVSTACK) ]; then $(DEVSTACK) --state $(STATE) down; fi

## test: lint, unit tests, then the end-to-end tests against the devstack
test: deps lint devstack test-unit fuzz test-e2e

test-unit:
	go test -short -count=1 $(GO_TEST_FLAGS) ./...
	cd deploy && go test -short -count=1 $(GO_TEST_FLAGS) ./...
	cd devstack && go test -count=1 ./...

test-e2e:
	source $(STATE)/env && go test -count=1 -timeout 5m $(GO_TEST_FLAGS) ./vault/... ./pki/... ./redisacl/...
	source $(STATE)/env && cd e2e && go test -count=1 -timeout 20m $(GO_TEST_FLAGS) ./...
	source $(STATE)/env && cd deploy && go test -count=1 -timeout 10m $(GO_TEST_FLAGS) ./...

## chaos: SIGKILL the worker at every step of rotations and restart a Temporal
## server of its own during grace; prints "worker kills survived N/M"
chaos: devstack
	source $(STATE)/env && go test -count=1 -v -parallel 4 -timeout 45m $(GO_TEST_FLAGS) ./chaos/

## fuzz: each fuzz target in turn (go test fuzzes one at a time), for the number
## of inputs after its name (about the seconds it used to run here, 10 s for
## FuzzParse); seeds in <package>/testdata/fuzz/<target>; under a minute in all.
## A count, not a time: a -fuzztime deadline that falls while new inputs are
## being gathered fails the run with "context deadline exceeded" (a clean-clone
## CI run did, on FuzzParse). Minimizing a new input is capped at 200 runs: by
## default it may take 60 s, and a short run would do nothing else.
FUZZ_TARGETS ?= catalog:FuzzParse:90000x postgres:FuzzVerifier:15000x postgres:FuzzIdent:7000x postgres:FuzzLiteral:5000x postgres:FuzzMatches:5000x
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do IFS=: read -r pkg name time <<<"$$t"; \
		echo "go test -fuzz ^$$name\$$ -fuzztime $$time ./$$pkg"; \
		go test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$time -fuzzminimizetime 200x ./$$pkg; done

## lint: gofmt, go vet, staticcheck and workflowcheck must be clean; then lint-docker
lint: lint-docker
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	go run go.temporal.io/sdk/contrib/tools/workflowcheck@$(WORKFLOWCHECK_VERSION) ./workflows/...
	cd deploy && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd e2e && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd devstack && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## lint-docker: the Dockerfile (BuildKit's build checks, as `docker build --check`,
## and rotator's rules), .dockerignore, docker-compose.yaml (compose-go) and
## deploy/ (Roles in step with the catalog); no Docker engine or cluster needed
lint-docker:
	cd deploy && go test -short -count=1 -run 'Dockerfile|Dockerignore|Compose|Versions|GoVersion|Roles|ClusterCatalog|Deployment|VaultPolicy' .

## replay-record: rerun the e2e happy paths and store their histories for the replay test (existing files are kept)
replay-record: devstack
	source $(STATE)/env && cd e2e && go test -count=1 -run 'TestJWTRotationEndToEnd|TestPostgresSingleUser$$|TestPostgresAlternatingUsers|TestAPIKeysWithVault|TestCertificateScanRenewsShortLived|TestScheduleTriggerStartsTheRotationOrSkips|TestEveryReferenceCounts|TestSingleUserRollbackRestoresThePasswordFirst|TestDualKeyDropsThePreviousKeyAtRetire|TestRedisRotatesWithoutFailedLogins' . -record-histories=$(CURDIR)/workflows/testdata

clean:
	rm -rf bin

## bench: benchmarks against the devstack; writes docs/benchmarks.md
bench: build devstack
	source $(STATE)/env && go run ./bench -runs $(BENCH_RUNS) -scale $(BENCH_SCALE) -worker-flags "$(BENCH_WORKER_FLAGS)"
