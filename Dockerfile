# Latchkey container image.
#
#   docker build -t latchkey .
#   docker run --rm -p 8080:8080 -v latchkey-data:/data -e LATCHKEY_JWT_SECRET=... latchkey
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts below. Its built-in
# Dockerfile frontend is enough: there is no `# syntax=` line, whose frontend image would have to
# be pulled, which fails on offline and mirror-only builders.

# ---------------------------------------------------------------------------------------------
# Build stage. The crate uses edition 2024 and declares rust-version 1.88; `rust:1-*` tracks
# the newest stable 1.x release. The slim image already has gcc and libc6-dev, which the
# bundled SQLite (libsqlite3-sys) needs; no TLS library is linked, so nothing else is required.
FROM rust:1-slim-bookworm AS build

WORKDIR /app

# Everything `cargo build --bin latchkey` reads, and nothing else, so the layer cache survives
# edits to tests and docs. .ci/image_build_stage.sh replays these COPY lines and the cargo
# command below in CI, so a file missing here fails CI rather than the next `docker build`.
COPY Cargo.toml Cargo.lock build.rs ./
# Cargo.toml declares `[[bench]] auth`, and cargo reads every declared target even for --bin:
# without benches/auth.rs the manifest is rejected. The bench itself is not compiled.
COPY benches ./benches
# Embedded at compile time: migrations through sqlx::migrate!, the OpenAPI document and the
# mail templates through include_str!, and the API reference page's Redoc bundle (assets/redoc/,
# served at GET /docs) through include_bytes!.
COPY assets ./assets
COPY migrations ./migrations
COPY openapi.yaml ./openapi.yaml
COPY templates ./templates
COPY src ./src

# The cargo registry and the target directory live in BuildKit cache mounts, so a rebuild only
# recompiles what changed. A cache mount is not part of the image layer, so the binary is copied
# out of it within this same RUN.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/app/target,sharing=locked \
    cargo build --release --locked --bin latchkey \
    && cp target/release/latchkey /usr/local/bin/latchkey

# ---------------------------------------------------------------------------------------------
# Runtime stage: the same Debian release as the build stage, so the glibc the binary was linked
# against is present.
FROM debian:bookworm-slim

# ca-certificates for outbound TLS. No curl: the HEALTHCHECK below is the binary itself.
# Versions are not pinned: bookworm-slim only receives security updates for these packages,
# and an exact pin breaks the build as soon as the Debian mirror drops the pinned version.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 latchkey \
    && useradd --system --uid 10001 --gid latchkey --no-log-init --no-create-home \
        --home-dir /data --shell /usr/sbin/nologin latchkey \
    && mkdir /data \
    && chown latchkey:latchkey /data

COPY --from=build /usr/local/bin/latchkey /usr/local/bin/latchkey

# Listen on every interface inside the container (the default, 127.0.0.1, would be unreachable
# through a published port) and keep the SQLite database on the /data volume. Set
# DATABASE_URL=postgres://... to use PostgreSQL instead.
ENV LATCHKEY_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/latchkey.db

WORKDIR /data
VOLUME ["/data"]

USER 10001:10001

EXPOSE 8080

# Liveness only (/readyz also checks the database). `latchkey healthcheck` reads LATCHKEY_ADDR
# like the server does (an unspecified 0.0.0.0 becomes 127.0.0.1), so `-e LATCHKEY_ADDR=...`
# moves the check with the listener. It exits 1 on anything but a 200 within 3 s, inside the
# 5 s timeout, and prints the reason, which `docker inspect` shows. Exec form: no shell needed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/latchkey", "healthcheck"]

ENTRYPOINT ["/usr/local/bin/latchkey"]
CMD ["serve"]
