# syntax=docker/dockerfile:1
#
# Container image for iam-credentials-exporter.
#
#   docker build -t iam-credentials-exporter .
#   docker run --rm -p 10461:10461 -e AWS_REGION=us-east-1 \
#     -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY -e AWS_SESSION_TOKEN \
#     iam-credentials-exporter
#
# Stages: `chef` (toolchain + cargo-chef), `planner` (dependency recipe from the manifests),
# `builder` (dependencies cooked in their own layer, then the exporter), and the final
# distroless image, which holds the binary, glibc, libgcc and the CA certificates it needs to
# reach AWS over HTTPS, and runs as the numeric non-root user 65532.
#
# tests/it/dockerfile.rs lints this file with hadolint and runs the `RUN cargo build` line of the
# builder stage verbatim against the repository, so keep that command on one line and keep its
# profile flags identical to the `cargo chef cook` line above it.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is rebuilt when Cargo.toml or Cargo.lock change, not on every
# source edit.
RUN cargo chef cook --release --locked --recipe-path recipe.json
# The git revision for --version and iam_credentials_exporter_build_info (build.rs reads it; the
# build context has no .git): docker build --build-arg REVISION=$(git rev-parse --short=12 HEAD)
ARG REVISION=""
ENV IAM_CREDENTIALS_EXPORTER_REVISION=${REVISION}
COPY . .
RUN cargo build --release --locked --bin iam-credentials-exporter

# cc-debian13 matches the glibc of the trixie build stage and ships ca-certificates
# (/etc/ssl/certs/ca-certificates.crt) and tzdata; the :nonroot tag's default user is 65532.
FROM gcr.io/distroless/cc-debian13:nonroot

ARG VERSION=0.1.0
ARG REVISION=""
ARG CREATED=""

LABEL org.opencontainers.image.title="iam-credentials-exporter" \
      org.opencontainers.image.description="Prometheus exporter for the AWS IAM credential report: MFA coverage, access key age and use, password age, root account safety" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian13:nonroot"

COPY --from=builder /src/target/release/iam-credentials-exporter /usr/local/bin/iam-credentials-exporter

# The exporter writes nothing to disk: run it with a read-only root filesystem.
USER 65532:65532
EXPOSE 10461
ENTRYPOINT ["/usr/local/bin/iam-credentials-exporter"]
