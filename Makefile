# rotator — see README.md. Every target runs on a fresh clone without Docker.
SHELL := /bin/bash
STATE ?= .devstack
DEVSTACK := $(STATE)/bin/devstack
STATICCHECK_VERSION := v0.8.2
GO_TEST_FLAGS ?=
BENCH_RUNS ?= 3

.PHONY: all build devstack demo demo-down test test-unit test-e2e lint lint-docker replay-record bench clean

all: build

## build: the worker and the starter CLI into bin/
build:
	go build -o bin/worker ./worker
	go build -o bin/starter ./starter

$(DEVSTACK): $(shell find devstack -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.yaml' 2>/dev/null)
	cd devstack && go build -o ../$(DEVSTACK) .

## devstack: build and start the local stack (idempotent)
devstack: $(DEVSTACK)
	$(DEVSTACK) --state $(STATE) up

## demo: bring up the stack, run the worker, rotate the sample JWT secret into grace
demo: build devstack
	STATE=$(STATE) scripts/demo.sh

## demo-down: stop the worker and everything devstack started
demo-down:
	STATE=$(STATE) scripts/demo.sh down
	@if [ -x $(DEVSTACK) ]; then $(DEVSTACK) --state $(STATE) down; fi

## test: lint, unit tests, then the end-to-end tests against the devstack
test: lint devstack test-unit test-e2e

test-unit:
	go test -short -count=1 $(GO_TEST_FLAGS) ./...
	cd devstack && go test -count=1 ./...

test-e2e:
	source $(STATE)/env && go test -count=1 -timeout 20m $(GO_TEST_FLAGS) ./e2e/... ./vault/... ./pki/... ./deploy/...

## lint: gofmt, go vet and staticcheck must be clean; then lint-docker
lint: lint-docker
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	go vet ./...
	go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd devstack && go vet ./... && go run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

## lint-docker: the Dockerfile (BuildKit's build checks, as `docker build --check`,
## and rotator's rules), .dockerignore, docker-compose.yaml (compose-go) and
## deploy/ (Roles in step with the catalog); no Docker engine or cluster needed
lint-docker:
	go test -short -count=1 -run 'Dockerfile|Dockerignore|Compose|Versions|GoVersion|Roles|ClusterCatalog|Deployment|VaultPolicy' ./deploy

## replay-record: rerun the e2e happy paths and store their histories for the replay test
replay-record: devstack
	source $(STATE)/env && go test -count=1 -run 'TestJWTRotationEndToEnd|TestPostgresSingleUser$$|TestAPIKeysWithVault|TestCertificateScanRenewsShortLived' ./e2e -record-histories=$(CURDIR)/workflows/testdata

clean:
	rm -rf bin

## bench: benchmarks against the devstack; writes docs/benchmarks.md
bench: build devstack
	source $(STATE)/env && go run ./bench -runs $(BENCH_RUNS)
