#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the black-box tests (each starts the real
# server on 127.0.0.1 with a temp database) on SQLite, the criterion benches in their
# quick test mode, schemathesis against a live server with its OpenAPI document
# (tests/schemathesis.sh), checks deploy/tidings.service with `systemd-analyze verify` (no
# running systemd needed), then every black-box test again on PostgreSQL. Installs
# PostgreSQL, Redis and systemd from Debian when missing (the cluster tests start
# real ones on 127.0.0.1), finds a Python 3.12 or later for the ntfy client test,
# installs prometheus_client (the metrics test's text parser) in a venv, and installs
# the OpenID Connect provider of the sign-in tests (`npm ci` in tests/oidc).
# The web app: its committed bundle is checked against a clean rebuild and its size
# budget (web/verify.sh), and Chromium and the browser test's packages are installed
# so that tests/web_app.rs drives the app in a real browser.
# The load generator and the reference server in benches/ are run by hand (see
# docs/benchmarks.md), never here.
set -euo pipefail
cd "$(dirname "$0")"
source tests/services.sh
need_packages
need_python
need_node_packages
need_prometheus_python
echo "== web app bundle" >&2
web/verify.sh
if ! command -v chromium >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
export TEST_BROWSER=1
unset TEST_POSTGRES_URL
echo "== SQLite" >&2
cargo test --lib --bins --tests --bench auth --bench broker "$@"
echo "== schemathesis" >&2
# The OpenAPI document against the live server (the debug binary the tests built).
tests/schemathesis.sh
echo "== systemd unit" >&2
# The unit names the installed binary, which verify looks for: point it at ours. A
# key verify does not understand is only a warning to it, so any output fails.
unit_dir=$(mktemp -d)
sed "s#/usr/local/bin/tidings#$PWD/target/debug/tidings#" deploy/tidings.service \
    >"$unit_dir/tidings.service"
unit_check=$(systemd-analyze verify "$unit_dir/tidings.service" 2>&1) || unit_check+=" (failed)"
rm -rf "$unit_dir"
if [ -n "$unit_check" ]; then
    echo "deploy/tidings.service: $unit_check" >&2
    exit 1
fi
echo "== PostgreSQL" >&2
start_postgres
trap stop_postgres EXIT
cargo test --tests "$@" -- --skip cluster_
