#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the black-box tests (each starts the real
# server on 127.0.0.1 with a temp database) on SQLite, the criterion benches in their
# quick test mode, then every black-box test again on PostgreSQL. Installs PostgreSQL
# and Redis from Debian when missing (the cluster tests start real ones on 127.0.0.1).
# The load generator and the reference server in benches/ are run by hand (see
# docs/benchmarks.md), never here.
set -euo pipefail
cd "$(dirname "$0")"
source tests/services.sh
need_packages
unset TEST_POSTGRES_URL
echo "== SQLite" >&2
cargo test --lib --bins --tests --bench auth --bench broker "$@"
echo "== PostgreSQL" >&2
start_postgres
trap stop_postgres EXIT
cargo test --tests "$@" -- --skip cluster_
