# Spacebot in a container: built from source in the first stage, run as a non-root user in
# slim Debian with bubblewrap for the workers' sandbox. $SPACEBOT_HOME is the /data volume.
# The steps are the README's "Container" section; see there for running it.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The build needs the sources, the migrations (checked queries, embedded), the prompts and
# the default config (embedded), and the benches the manifest names.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src src
COPY migrations migrations
COPY prompts prompts
COPY config config
COPY benches benches
COPY tests/support tests/support
RUN cargo build --release --locked --bin spacebot

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin spacebot \
    && mkdir -p /data && chown spacebot:spacebot /data && chmod 0700 /data
COPY --from=build /src/target/release/spacebot /usr/local/bin/spacebot
ENV SPACEBOT_HOME=/data
VOLUME ["/data"]
USER spacebot
EXPOSE 19898
# `status` asks the running daemon through its API (with the config's token, if any).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["spacebot", "status"]
ENTRYPOINT ["spacebot"]
CMD ["serve"]
