# Writ with the users example baked in as a bundle, beside the orders domain.
#
#   docker build -t writ-users .
#   docker run --rm -p 8080:8080 -v writ-data:/data writ-users
#
# Open access (--insecure-open): anyone who reaches port 8080 may write and read. To require
# tokens instead, mount a tokens file and override the command, e.g.
#   docker run --rm -p 8080:8080 -v writ-data:/data -v "$PWD/tokens.json:/etc/writ/tokens.json:ro" \
#     writ-users serve --app /app/users.bundle --domain orders --listen 0.0.0.0:8080 \
#     --tokens /etc/writ/tokens.json --data-dir /data
# How this file was checked: README.md, "Docker"; .ci/dockerfile-check runs its steps.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin writ
# Checked as `serve --app` checks it; the digest is the one the server logs at start.
RUN mkdir -p /out && target/release/writ app pack examples/users --out /out/users.bundle > /out/users.bundle.sha256

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --no-create-home --home-dir /data writ \
    && mkdir -p /data /app && chown writ /data
COPY --from=build /src/target/release/writ /usr/local/bin/writ
COPY --from=build /out/users.bundle /out/users.bundle.sha256 /app/
USER writ
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["writ"]
CMD ["serve", "--app", "/app/users.bundle", "--domain", "orders", "--listen", "0.0.0.0:8080", "--insecure-open", "--data-dir", "/data"]
