#!/usr/bin/env bash
# The portal's checks (called by scripts/test.sh): install its npm packages from the
# committed lockfile, lint, rebuild portal/dist and fail on any difference from the
# committed build, the verifier's unit tests against the Rust-written golden vectors,
# then the end-to-end tests in Debian's chromium against a real `fundtrail demo`.
#
# Needs node, npm and /usr/bin/chromium (scripts/install-test-deps.sh installs them),
# and target/debug/fundtrail (built here when missing).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$SCRIPT_DIR/.."
cd "$ROOT/portal"

log() { echo "test-portal: $*" >&2; }

log "npm ci (from package-lock.json)"
npm ci --no-audit --no-fund --loglevel=error >&2
log "eslint"
npx --no-install eslint .
log "rebuilding dist/ (and src/core/schemas.json, from schemas/) and comparing them with the committed build"
npm run --silent build >/dev/null
built=(dist src/core/schemas.json)
if ! git diff --exit-code --stat -- "${built[@]}" || [ -n "$(git status --porcelain -- "${built[@]}")" ]; then
    log "portal/dist or src/core/schemas.json differs from what the sources build: run (cd portal && npm ci && npm run build) and commit both"
    exit 1
fi
log "unit tests (golden vectors written by crates/fundtrail-audit/tests/portal_vectors.rs)"
node --test test/unit/
if [ ! -x "$ROOT/target/debug/fundtrail" ] || [ "${FUNDTRAIL_BUILD:-1}" = 1 ]; then
    (cd "$ROOT" && cargo build -p fundtrail --quiet)
fi
log "end-to-end tests (playwright-core driving /usr/bin/chromium)"
FUNDTRAIL_BIN="$ROOT/target/debug/fundtrail" node --test --test-concurrency=1 test/e2e/
