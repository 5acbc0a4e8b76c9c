# rotator: the worker (the entrypoint) and the starter CLI on a distroless,
# non-root base. Build with `docker build -t rotator:dev .`; the versions
# are the ones in deploy/versions.env. Linted by `make lint-docker` (BuildKit's
# own build checks, the rules of `docker build --check`, plus rotator's in
# deploy/dockerfile_test.go), which needs no Docker engine.
#
# Base images are pinned by tag. To pin them by digest, write
# FROM <image>:<tag>@sha256:<digest> and record the same digest in
# deploy/versions.env (GO_IMAGE_DIGEST, DISTROLESS_IMAGE_DIGEST); the test
# keeps the two in step.

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# A static binary; the toolchain in the image, never one downloaded at build.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/worker ./worker && \
    go build -trimpath -ldflags="-s -w" -o /out/starter ./starter

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/worker /out/starter /usr/local/bin/
# The sample catalog; in a cluster the ConfigMap made from
# deploy/base/rotator.yaml is mounted over /etc/rotator.
COPY rotator.yaml /etc/rotator/rotator.yaml
ENV ROTATOR_CATALOG=/etc/rotator/rotator.yaml
# 65532: distroless's nonroot user and group.
USER nonroot:nonroot
# /healthz, /readyz and /metrics.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/worker"]
