# syntax=docker/dockerfile:1.7
# check=error=true

ARG BASE=alpine:3.20
ARG GO_VERSION=1.26

# Build on the native platform, cross-compile for the target.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
RUN --mount=type=cache,target=/root/.cache/go-build \
    --mount=type=bind,from=ghcr.io/org/tools:v2,source=/bin/tool,target=/usr/local/bin/tool \
    go build -o /out/app ./cmd/app

FROM golang:${GO_VERSION}-alpine AS lint
RUN --mount=type=bind,from=build,source=/src,target=/src go vet ./...

from node:22-bookworm-slim as assets
copy --from=build /out/app /usr/local/bin/app
RUN npm ci && npm run build

# Generated config, written with a heredoc: its body is not Dockerfile.
FROM build AS test
RUN <<EOF
FROM ubuntu:24.04
COPY --from=nginx:1.27 /a /b
EOF
COPY <<-"CONF" /etc/app.conf
	image = "redis:7"
	FROM debian:12
	CONF

FROM \
    python:3.12-slim \
    AS final
COPY --from=build /out/app /usr/local/bin/app
COPY --from=assets /app/dist /srv/www
COPY --from=nginx:1.27 /etc/nginx/nginx.conf /etc/nginx/nginx.conf
COPY --link --from=quay.io/prometheus/busybox:latest /bin/sh /bin/sh
COPY --from=0 /out/app /usr/local/bin/app-copy
COPY --from="bitnami/kubectl:1.31" /opt/bitnami/kubectl/bin/kubectl /usr/local/bin/
ONBUILD COPY --from=public.ecr.aws/aws-cli/aws-cli:2 /usr/local/aws-cli /usr/local/aws-cli

FROM ${BASE} AS runtime
COPY --from=final /usr/local/bin/app /app

FROM mycorp.example.com/base/distroless:nonroot AS private

FROM scratch
COPY --from=runtime /app /app
ENTRYPOINT ["/app"]
