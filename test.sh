#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the black-box tests (each starts the real
# server on 127.0.0.1 with a temp database), and the criterion benches in their quick
# test mode. Needs only a Rust toolchain: cargo fetches the crates, SQLite is built in.
# The load generator and the reference server in benches/ are run by hand (see
# docs/benchmarks.md), never here.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --lib --bins --tests --bench auth --bench broker "$@"
