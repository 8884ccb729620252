# Sourced by test.sh: installs PostgreSQL, Redis and systemd (for `systemd-analyze`)
# from Debian when missing, finds a Python 3.12 or later for the ntfy client test,
# installs the OpenID Connect provider of the sign-in tests (npm), makes a virtual
# environment with prometheus_client for the metrics test, and
# runs a throwaway PostgreSQL cluster on 127.0.0.1 (own
# data directory, no service).

need_packages() {
    local missing=()
    compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    command -v systemd-analyze >/dev/null || missing+=(systemd)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "test.sh: please install ${missing[*]} (Debian packages), or run as root" >&2
        exit 1
    fi
    echo "test.sh: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Whether $1 is a Python 3.12 or later (what aiontfy, in tests/ntfy_clients.rs, needs).
python_recent() {
    "$1" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null
}

# Exports TEST_PYTHON: a Python 3.12 or later from the PATH or pyenv, else Debian's
# python3 (with venv) when that is recent enough; `none` when there is none.
need_python() {
    local python
    for python in "${TEST_PYTHON:-}" python3.13 python3.12 python3 \
        $(ls -d "$HOME"/.pyenv/versions/3.*/bin/python3 2>/dev/null | sort -rV); do
        if [ -n "$python" ] && python_recent "$python"; then
            export TEST_PYTHON=$(command -v "$python")
            return 0
        fi
    done
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "test.sh: installing python3 and python3-venv" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
        if python_recent /usr/bin/python3; then
            export TEST_PYTHON=/usr/bin/python3
            return 0
        fi
    fi
    # Debian 12 has 3.11 only: on a machine without a newer one the aiontfy run is
    # skipped (loudly), rather than failing everything else.
    echo "test.sh: WARNING: no Python 3.12 or later; the aiontfy client test is skipped" >&2
    export TEST_PYTHON=none
}

# Installs the OpenID Connect provider of tests/oidc.rs (oidc-provider, from the npm
# registry, as its committed lock file pins it) when it is not there yet; Node.js must
# be on the PATH.
need_node_packages() {
    [ -d tests/oidc/node_modules/oidc-provider ] && return 0
    if ! command -v npm >/dev/null; then
        echo "test.sh: WARNING: no npm; the OpenID Connect sign-in tests are skipped" >&2
        return 0
    fi
    echo "test.sh: installing tests/oidc (npm ci)" >&2
    (cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
}

# Exports TEST_PROMETHEUS_PYTHON: the Python of a virtual environment under target/
# with the pinned prometheus_client (tests/prometheus/requirements.txt), whose text
# parser tests/metrics_text.rs reads /metrics with; made once, remade when the pin
# changes.
need_prometheus_python() {
    local venv=target/prometheus-venv
    local wanted=tests/prometheus/requirements.txt
    if ! cmp -s "$wanted" "$venv/installed-requirements.txt" || [ ! -x "$venv/bin/python" ]; then
        rm -rf "$venv"
        if ! python3 -m venv "$venv" 2>/dev/null; then
            echo "test.sh: installing python3-venv" >&2
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
            python3 -m venv "$venv"
        fi
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$wanted"
        cp "$wanted" "$venv/installed-requirements.txt"
    fi
    export TEST_PROMETHEUS_PYTHON=$PWD/$venv/bin/python
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
            -o "-p $port -c listen_addresses=127.0.0.1 -k $PG_DIR/data -c fsync=off -c max_connections=500 -c wal_level=minimal -c max_wal_senders=0 -c max_wal_size=96MB -c min_wal_size=32MB" \
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

# Exports SCHEMATHESIS: the schemathesis command (PyPI, pinned), installed once into a
# venv under target/ with the machine's python3 (3.9 or later).
need_schemathesis() {
    local venv=target/schemathesis-venv version=4.32.5
    if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -q "$version"; then
        echo "test.sh: installing schemathesis $version into $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$version"
    fi
    export SCHEMATHESIS="$PWD/$venv/bin/schemathesis"
}
