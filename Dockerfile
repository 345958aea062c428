# syntax=docker/dockerfile:1
# The one imagen-load binary (run, emulator, worker, merge, ...) in a small non-root image.
#   docker build -t imagen-load:dev .
#   docker run --rm -p 8085:8085 imagen-load:dev emulator --host 0.0.0.0
#   docker run --rm -e PUBSUB_EMULATOR_HOST=host:8085 imagen-load:dev worker --subscription imagen-upscale-sub \
#     --http-host 0.0.0.0
# The health check asks the emulator (port 8085) or the worker (port 8080) for /healthz; set
# IMAGEN_LOAD_HEALTH_URL for other ports. A `run` container serves nothing: start it with --no-healthcheck.

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so a change to the sources does not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY benches benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked --bin imagen-load \
    && rm -rf src
COPY src src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin imagen-load \
    && strip target/release/imagen-load

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/imagen-load /usr/local/bin/imagen-load
COPY workloads /opt/imagen-load/workloads
# 65532: the conventional "nonroot" user of distroless images.
USER 65532:65532
WORKDIR /tmp
EXPOSE 8085 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["imagen-load", "health"]
ENTRYPOINT ["imagen-load"]
CMD ["--help"]
