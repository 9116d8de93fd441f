# One image per binary, from one multi-stage build:
#   docker build --target story-service -t fabula/story-service .
#   docker build --target gpt-worker -t fabula/gpt-worker .
#   docker build --target gateway -t fabula/gateway .
# Dependencies are cached in their own layer: sources change far more often.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# 1. Dependencies only, against stub sources.
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY proto/Cargo.toml proto/build.rs proto/
COPY proto/proto proto/proto
COPY story-service/Cargo.toml story-service/
COPY gpt-worker/Cargo.toml gpt-worker/
COPY gateway/Cargo.toml gateway/
COPY crates/runtime/Cargo.toml crates/runtime/
COPY crates/store/Cargo.toml crates/store/
COPY crates/testkit/Cargo.toml crates/testkit/
RUN for c in proto crates/runtime crates/store crates/testkit story-service gpt-worker gateway; do mkdir -p $c/src && echo '' > $c/src/lib.rs; done \
 && echo 'fn main() {}' > src.rs && mkdir -p src && mv src.rs src/main.rs \
 && for c in story-service gpt-worker gateway; do echo 'fn main() {}' > $c/src/main.rs; done \
 && cargo build --release --locked -p story-service -p gpt-worker -p gateway || true
# 2. The real sources.
COPY . .
RUN touch proto/src/lib.rs crates/*/src/lib.rs story-service/src/*.rs gpt-worker/src/*.rs gateway/src/*.rs \
 && cargo build --release --locked -p story-service --bin story-service -p gpt-worker --bin gpt-worker \
      -p gateway --bin gateway

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /data fabula && mkdir -p /data && chown fabula /data
USER fabula
WORKDIR /data

FROM runtime AS story-service
COPY --from=build /src/target/release/story-service /usr/local/bin/story-service
ENV STORY_LISTEN=0.0.0.0:50051 FABULA_DATA_DIR=/data
EXPOSE 50051
ENTRYPOINT ["story-service"]

FROM runtime AS gpt-worker
COPY --from=build /src/target/release/gpt-worker /usr/local/bin/gpt-worker
ENV WORKER_LISTEN=0.0.0.0:50052
EXPOSE 50052
ENTRYPOINT ["gpt-worker"]

FROM runtime AS gateway
COPY --from=build /src/target/release/gateway /usr/local/bin/gateway
ENV GATEWAY_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["gateway"]
