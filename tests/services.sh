# Sourced by test.sh: installs PostgreSQL and Redis from Debian when missing, and
# runs a throwaway PostgreSQL cluster on 127.0.0.1 (own data directory, no service).

need_packages() {
    local missing=()
    compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "test.sh: please install ${missing[*]} (Debian packages), or run as root" >&2
        exit 1
    fi
    echo "test.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

pg_bin() {
    ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1
}

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# Starts the shared cluster and exports TEST_POSTGRES_URL.
start_postgres() {
    PG_DIR=$(mktemp -d /tmp/tidings-test-pg.XXXXXX)
    [ "$(id -u)" = 0 ] && chown postgres "$PG_DIR"
    as_postgres "$(pg_bin)/initdb" -A trust -U postgres --no-sync -D "$PG_DIR/data" >/dev/null
    # A port below the ephemeral range, so that no client connection takes it first.
    local port attempt
    for attempt in 1 2 3 4 5; do
        port=$((20000 + RANDOM % 12000))
        if as_postgres "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w \
            -o "-p $port -c listen_addresses=127.0.0.1 -k $PG_DIR/data -c fsync=off -c max_connections=500" \
            start >/dev/null; then
            export TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
            return 0
        fi
    done
    echo "test.sh: PostgreSQL did not start; see $PG_DIR/server.log" >&2
    exit 1
}

stop_postgres() {
    if [ -n "${PG_DIR:-}" ]; then
        as_postgres "$(pg_bin)/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$PG_DIR"
    fi
}
