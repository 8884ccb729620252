#!/usr/bin/env bash
# Runs every load scenario against tidings, Nchan (nginx) and the ceiling server, in
# interleaved rounds, then writes the table of medians and ratios into
# docs/benchmarks.md and the chart into docs/benchmarks.png.
#
#   bash benches/compare.sh                      # the full run (about 18 minutes)
#   ROUNDS=1 DURATION=3 HEAVY_DURATION=5 CONNECTIONS=2000 bash benches/compare.sh
#
# Settings (environment): ROUNDS (3), DURATION (8 s of publishing per stream
# scenario), HEAVY_DURATION (15), IDLE (10000 connections), CONNECTIONS (100000 asked;
# the file limit caps it), SCENARIOS, TARGETS, NO_DOCS=1 (leave docs/ alone),
# BINARY (another build of the server, to measure a change against), LOAD_OPTIONS
# (more options for every run of the load generator, e.g. `--rate 15000`).
# Needs root (or the packages already there) for nginx-light and libnginx-mod-nchan,
# and `ulimit -n` well above the connection count: each side holds one file per
# connection (see docs/benchmarks.md).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-8}
HEAVY_DURATION=${HEAVY_DURATION:-15}
IDLE=${IDLE:-10000}
CONNECTIONS=${CONNECTIONS:-100000}
SCENARIOS=${SCENARIOS:-"fanout-sse fanout-ws fanout-wide heavy publish idle connections"}
TARGETS=${TARGETS:-"tidings nchan ceiling"}
WORK=$PWD/target/compare
RESULTS=$WORK/results.tsv
# Below the ephemeral range, so that no client connection holds them.
BASE_PORT=${BASE_PORT:-27180}
TIDINGS_PORT=$BASE_PORT
NCHAN_PORT=$((BASE_PORT + 1))
CEILING_PORT=$((BASE_PORT + 2))
TOPICS=100

ulimit -n "$(ulimit -Hn)"

if [ ! -e /usr/lib/nginx/modules/ngx_nchan_module.so ] || ! command -v nginx >/dev/null; then
    apt-get update -q
    # RUNLEVEL=1: install without starting the distribution's nginx on port 80.
    RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light libnginx-mod-nchan ||
        RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx libnginx-mod-nchan
fi
if [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-dejavu-core
fi

cargo build --release --bin tidings
executable() {
    cargo bench --no-run --bench "$1" --message-format=json 2>/dev/null |
        grep -o "\"executable\":\"[^\"]*/deps/$1-[^\"]*\"" | cut -d'"' -f4
}
LOAD=$(executable load)
CEILING=$(executable ceiling)

rm -rf "$WORK"
mkdir -p "$WORK"
SERVER_PID=

listening() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

for port in "$TIDINGS_PORT" "$NCHAN_PORT" "$CEILING_PORT"; do
    if listening "$port"; then
        echo "port $port is taken: set BASE_PORT to a free range" >&2
        exit 1
    fi
done

# Waits until the server just started (SERVER_PID) listens on port $1.
wait_for_port() {
    for _ in $(seq 1 300); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "the server on port $1 exited" >&2
            return 1
        fi
        if listening "$1"; then return 0; fi
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap stop_server EXIT

# Notes the server just started in the background, waits for its port ($1) and sets
# the URL templates of its publish, SSE and WebSocket paths ($2, $3, $4).
started() {
    SERVER_PID=$!
    wait_for_port "$1"
    URLS=(--publish-url "http://127.0.0.1:$1$2" --sse-url "http://127.0.0.1:$1$3"
        --ws-url "ws://127.0.0.1:$1$4")
}

# A fresh database each run; an unlimited tier for the publisher, no anonymous limit.
start_tidings() {
    local dir=$WORK/tidings
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/tidings.toml" <<EOF
listen = "127.0.0.1:$TIDINGS_PORT"
database_url = "sqlite://$dir/tidings.db"
registration = "open"

[limits]
anonymous_per_minute = 0
connections_per_ip = 0
creations_per_minute = 0
default_tier = "unlimited"
EOF
    TIDINGS_LOG=warn "${BINARY:-target/release/tidings}" serve --config "$dir/tidings.toml" >"$dir/log" 2>&1 &
    started "$TIDINGS_PORT" "/{topic}" "/{topic}/sse" "/{topic}/ws"
    local base=http://127.0.0.1:$TIDINGS_PORT
    KEY=$(curl -sf -X POST "$base/auth/register" -H 'Content-Type: application/json' \
        -d '{"email":"bench@example.com","username":"bench","password":"bench-password"}' |
        grep -o '"key":"noti_[^"]*"' | cut -d'"' -f4)
    # Publishing creates each topic, public, so subscribers need no credential.
    for i in $(seq 0 $((TOPICS - 1))); do
        curl -sf -o /dev/null -X POST "$base/t$i" -H "X-API-Key: $KEY" -d created
    done
    URLS+=(--header "X-API-Key: $KEY")
}

start_nchan() {
    local dir=$WORK/nginx
    rm -rf "$dir"
    mkdir -p "$dir/logs"
    local files
    files=$(ulimit -n)
    cat >"$dir/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
daemon off;
worker_processes 2;
worker_rlimit_nofile $files;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections $files; multi_accept on; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    nchan_shared_memory_size 1024M;
    server {
        listen 127.0.0.1:$NCHAN_PORT backlog=4096;
        location ~ ^/pub/([A-Za-z0-9_-]+)\$ {
            nchan_publisher;
            nchan_channel_id \$1;
            nchan_message_buffer_length 2000;
            nchan_message_timeout 5m;
        }
        location ~ ^/sub/([A-Za-z0-9_-]+)\$ {
            nchan_subscriber;
            nchan_channel_id \$1;
        }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" &
    started "$NCHAN_PORT" "/pub/{topic}" "/sub/{topic}" "/sub/{topic}"
}

start_ceiling() {
    "$CEILING" --bench --listen "127.0.0.1:$CEILING_PORT" --workers 2 >"$WORK/ceiling.log" 2>&1 &
    started "$CEILING_PORT" "/{topic}" "/{topic}/sse" "/{topic}/ws"
}

scenario_options() {
    case $1 in
    heavy) echo --duration "$HEAVY_DURATION" ;;
    idle) echo --subscribers "$IDLE" --duration 3 ;;
    connections) echo --subscribers "$CONNECTIONS" --duration 3 --connect-timeout 120 ;;
    *) echo --duration "$DURATION" ;;
    esac
}

started=$(date +%s)
for scenario in $SCENARIOS; do
    for round in $(seq 1 "$ROUNDS"); do
        for target in $TARGETS; do
            "start_$target"
            # shellcheck disable=SC2046 # the options are words on purpose
            "$LOAD" "$scenario" $(scenario_options "$scenario") ${LOAD_OPTIONS:-} --target "$target" \
                --round "$round" --server-pid "$SERVER_PID" --out "$RESULTS" "${URLS[@]}" \
                --bench || echo "$scenario $target round $round failed" >&2
            stop_server
        done
    done
done
elapsed=$(($(date +%s) - started))

"$LOAD" report --in "$RESULTS" --markdown "$WORK/table.md" --png "$WORK/benchmarks.png" --bench
if [ -z "${NO_DOCS:-}" ]; then
    cp "$WORK/benchmarks.png" docs/benchmarks.png
    {
        echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
        echo "$(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), nginx $(nginx -v 2>&1 | cut -d/ -f2)."
        echo "2-core machine, generator and server share the CPU. $(date -u +%F); $ROUNDS rounds"
        echo "(medians), ${DURATION} s of publishing per stream scenario, heavy ${HEAVY_DURATION} s;"
        echo "whole comparison $((elapsed / 60)) min $((elapsed % 60)) s."
        echo
        cat "$WORK/table.md"
    } >"$WORK/section.md"
    awk -v section="$WORK/section.md" '
        /<!-- compare:end -->/ { skip = 0 }
        !skip { print }
        /<!-- compare:begin -->/ { while ((getline line < section) > 0) print line; skip = 1 }
    ' docs/benchmarks.md >"$WORK/benchmarks.md"
    cp "$WORK/benchmarks.md" docs/benchmarks.md
fi
echo "results: $RESULTS; table: $WORK/table.md"
