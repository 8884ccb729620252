# tidings in a container: built in a Rust image, run from a slim Debian with only the
# binary (see docs/deployment.md).
#   docker build -t tidings .
#   docker run -p 8080:8080 -v tidings-data:/var/lib/tidings tidings

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# libpq, OpenSSL and SQLite are built from source and linked in: no -dev packages.
RUN cargo build --release --locked --bin tidings \
    && cp target/release/tidings /tidings

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /var/lib/tidings --create-home tidings
COPY --from=build /tidings /usr/local/bin/tidings
USER tidings
WORKDIR /var/lib/tidings
VOLUME /var/lib/tidings
# The database is the default sqlite://tidings.db, here in the volume. Secrets as
# files (Docker secrets): TIDINGS_AUTH__JWT_SECRET_FILE=/run/secrets/jwt_secret, and
# for PostgreSQL TIDINGS_DATABASE_URL_FILE=/run/secrets/database_url.
ENV TIDINGS_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/tidings"]
CMD ["serve"]
