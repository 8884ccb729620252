#!/usr/bin/env bash
# The committed bundle (web/dist/, which `cargo build` embeds) must be what a clean
# `npm ci && npm run build` makes from the committed sources, and its JavaScript must
# stay within 150 KB gzipped. Run by test.sh (so by CI); needs Node.js and npm.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf node_modules
npm ci --no-audit --no-fund --loglevel=error
npm run --silent build >/dev/null
if ! git diff --quiet -- dist || [ -n "$(git ls-files --others --exclude-standard -- dist)" ]; then
    git status --short -- dist >&2
    echo "web/dist/ differs from a clean rebuild: run 'npm ci && npm run build' in web/ and commit web/dist/" >&2
    exit 1
fi
node check.mjs
