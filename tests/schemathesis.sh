#!/usr/bin/env bash
# Runs schemathesis against a live server with its own OpenAPI document: starts
# target/debug/tidings on 127.0.0.1 with a temp SQLite database and no limits, makes an
# account and takes its access token (so that the operations that need a credential
# are exercised past the 401; not its API key, which the fuzzer itself regenerates or
# deletes through `/api/keys/{id}` once it has seen the key's id in a list), then has schemathesis call every operation with generated
# requests and check that none gets a 5xx, a status the document does not list, or a
# body that breaks its schema. The streams (`/{topics}/sse|json|raw|ws`) never end,
# which would hang a fuzzer: they are left out (their `poll=1` form is covered by
# tests/transports.rs). Exits non-zero with schemathesis's report on any failure.
#
# Needs the debug binary (`cargo build`) and schemathesis (`need_schemathesis` in
# tests/services.sh, or SCHEMATHESIS=/path/to/schemathesis). SCHEMATHESIS_EXAMPLES
# (default 30) bounds the examples per operation, SCHEMATHESIS_SEED (default 1) fixes
# the generated data so that a run can be repeated; SCHEMATHESIS_LOG names a file to
# keep the server's log in.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/services.sh
[ -n "${SCHEMATHESIS:-}" ] || need_schemathesis
binary=target/debug/tidings
[ -x "$binary" ] || { echo "schemathesis.sh: build $binary first (cargo build)" >&2; exit 1; }

dir=$(mktemp -d /tmp/tidings-schemathesis.XXXXXX)
server=
finish() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    [ -n "${SCHEMATHESIS_LOG:-}" ] && cp "$dir/server.log" "$SCHEMATHESIS_LOG"
    rm -rf "$dir"
}
trap finish EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
cat >"$dir/config.toml" <<EOF
listen = "127.0.0.1:$port"
database_url = "sqlite://$dir/tidings.db"

[limits]
default_tier = "unlimited"
anonymous_per_minute = 0
login_failures_per_email = 0
login_per_ip_per_minute = 0
register_per_ip = 0
refresh_per_ip_per_minute = 0
creations_per_minute = 0
connections_per_ip = 0

[limits.quotas.unlimited]
topics = 0
api_keys = 0
topic_tokens = 0
EOF
"$binary" serve --config "$dir/config.toml" >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
    curl -fsS "$base/health" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$dir/server.log" >&2; exit 1; }
    sleep 0.1
done

token=$(curl -fsS "$base/auth/register" -H 'Content-Type: application/json' \
    -d '{"email":"fuzz@example.com","username":"fuzz","password":"fuzz password"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

started=$(date +%s)
status=0
# From the temp dir: schemathesis keeps a cache of what failed in its working directory.
(cd "$dir" && timeout 200 "$SCHEMATHESIS" run "$base/api/openapi.json" \
    --checks "${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance}" \
    --exclude-path-regex '^/\{topics\}/(sse|json|raw|ws)$' \
    --header "Authorization: Bearer $token" \
    --generation-with-security-parameters false \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-30}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --generation-database none \
    --max-time 120 \
    --workers 2 \
    --request-timeout 10 \
    --no-color \
    --warnings off) || status=$?
echo "schemathesis.sh: $(($(date +%s) - started)) s" >&2
if [ "$status" != 0 ]; then
    [ "$status" = 124 ] && echo "schemathesis.sh: timed out" >&2
    echo "schemathesis.sh: failed; the server's log:" >&2
    tail -n 50 "$dir/server.log" >&2
    exit 1
fi
