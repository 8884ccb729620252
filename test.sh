#!/usr/bin/env bash
# Runs the whole test suite (unit and black-box). Installs nothing by hand: cargo
# fetches the crates, SQLite is built in.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --all-targets "$@"
