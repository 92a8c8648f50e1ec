# syntax=docker/dockerfile:1
#
# Tombstone container image.
#
#   docker build -t ghcr.io/tombstone-proxy/tombstone:dev \
#     --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg REVISION=$(git rev-parse --short HEAD) .
#   docker run -v $PWD/config.yaml:/etc/tombstone/config.yaml:ro \
#     -p 6432:6432 -p 9187:9187 ghcr.io/tombstone-proxy/tombstone:dev
#
# The mounted config must listen on 0.0.0.0:6432 and serve metrics on
# 0.0.0.0:9187 (the defaults, 127.0.0.1, are unreachable from outside the
# container). deploy/deploy_test.go checks that this file, the compose file
# and the Kubernetes manifests agree on ports, paths and the image name.

# Exact tags so a rebuild uses the same toolchain and the same libc: the Go
# version is the one go.mod and the CI machine use, and bookworm (Debian 12)
# in both stages means the binary links against the glibc it runs on.
ARG GO_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=debian:12.11-slim

FROM ${GO_IMAGE} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
# pg_query_go compiles libpg_query (C) through cgo, hence CGO_ENABLED=1 and a
# glibc runtime image. -trimpath and -buildvcs=false keep build paths and
# VCS state out of the binary, so the same source and arguments give the
# same bytes; the version comes only from the build arguments.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -buildid= \
        -X github.com/tombstone-proxy/tombstone/internal/buildinfo.Version=${VERSION} \
        -X github.com/tombstone-proxy/tombstone/internal/buildinfo.Revision=${REVISION}" \
      -o /out/tombstone ./cmd/tombstone

# debian-slim rather than distroless: it has bash, which the HEALTHCHECK
# below uses (bash's /dev/tcp) so the image needs neither curl/wget nor a
# health subcommand in the binary. It still runs as an unprivileged user.
FROM ${RUNTIME_IMAGE}
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="tombstone" \
      org.opencontainers.image.description="PostgreSQL proxy that turns DELETE into soft deletes" \
      org.opencontainers.image.source="https://github.com/tombstone-proxy/tombstone" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# A numeric UID so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
RUN groupadd --system --gid 65532 tombstone \
 && useradd --system --uid 65532 --gid 65532 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin tombstone \
 && mkdir -p /etc/tombstone
# CA roots for upstream_tls.mode verify-full without a ca_file, copied from
# the build stage instead of apt-get so the build needs no package mirror.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/tombstone /usr/local/bin/tombstone
USER 65532:65532
# 6432: PostgreSQL clients (listen); 9187: /metrics, /healthz, /readyz (metrics.listen).
EXPOSE 6432 9187
# /healthz answers 200 while the process is alive. HTTP/1.0 makes the
# server close the connection, so the check never waits for a timeout.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9187 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r _ code _ <&3 && [ \"$code\" = 200 ]"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tombstone"]
CMD ["serve", "--config", "/etc/tombstone/config.yaml"]
