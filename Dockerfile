# syntax=docker/dockerfile:1
#
# promadapter image: a static binary on a distroless base, running as the "nonroot" user (65532).
#
#   docker build -t REGISTRY/promadapter:TAG --build-arg VERSION=TAG .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/promadapter:TAG --push .
#
# The builder always runs on the build machine's platform and cross-compiles for the target one, so
# multi-platform builds need no emulation. gcr.io/distroless/static-debian12 has no linux/riscv64
# variant: for RISC-V pass --build-arg BASE_IMAGE= a static nonroot base that has one (see
# docs/install.md, "Building the image").

ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
# The version kubectl and /version report, as `make build` sets it.
ARG VERSION=v0.1.0-dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=${VERSION}" \
      -o /out/promadapter ./cmd/promadapter

FROM ${BASE_IMAGE}
COPY --from=build /out/promadapter /promadapter
USER 65532:65532
# 6443 is the port deploy/ passes as --secure-port; the binary's own default is 443.
EXPOSE 6443
ENTRYPOINT ["/promadapter"]
