# syntax=docker/dockerfile:1
# Gatehouse in a container: built with the pinned toolchain, run as a
# non-root user on a distroless base (no shell, no package manager; glibc,
# libgcc and CA certificates only).
#
#   docker build -t gatehouse .
#   docker run --env-file gatehouse.env -p 8000:8000 \
#     -v gatehouse-data:/var/lib/gatehouse gatehouse
#
# No secret is baked in: the image runs with ENVIRONMENT=production, which
# refuses to start until JWT_SECRET_KEY, DATA_ENCRYPTION_KEYS and
# BLIND_INDEX_KEY are given at run time (see DEPLOYMENT.md). Commands run
# the same way: `docker run … gatehouse create-admin --username … --email …`.

FROM rust:1.95.0-bookworm AS build
WORKDIR /src
COPY . .
# The caches speed up rebuilds and never reach the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p gatehouse \
    && install -D -m 0755 target/release/gatehouse /out/gatehouse \
    && install -d -m 0700 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
# DATA_DIR: the SQLite database, uploads and (development only) generated
# keys; owned by the runtime user, so a fresh named volume is too.
COPY --from=build --chown=65532:65532 /out/data /var/lib/gatehouse
# BIND_ADDR listens on every interface of the container: publish the port
# or put a proxy in front. Metrics stay on the container's loopback
# (METRICS_ADDR=127.0.0.1:9090) unless set otherwise.
ENV ENVIRONMENT=production \
    BIND_ADDR=0.0.0.0:8000 \
    DATA_DIR=/var/lib/gatehouse
WORKDIR /var/lib/gatehouse
VOLUME ["/var/lib/gatehouse"]
USER 65532:65532
EXPOSE 8000
# `gatehouse healthcheck` asks GET /health on BIND_ADDR (through loopback,
# under a name from ALLOWED_HOSTS): exit 0 on a 200 within 3 s, else 1.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["gatehouse", "healthcheck"]
ENTRYPOINT ["gatehouse"]
CMD ["serve"]
