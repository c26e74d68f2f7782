#!/usr/bin/env bash
# Runs the whole workspace's tests with everything they need installed.
# Called by the README and by .ci/run. With arguments, they replace `--workspace`
# (e.g. `scripts/test.sh -p fundtrail-store`).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$SCRIPT_DIR/.."

exports="$("$SCRIPT_DIR/install-test-deps.sh")"
eval "$(printf '%s\n' "$exports" | tail -n1)"
export NATS_SERVER_BIN
echo "test.sh: NATS_SERVER_BIN=$NATS_SERVER_BIN" >&2

whole=0
if [ "$#" -eq 0 ]; then
    whole=1
    set -- --workspace
fi
cargo test "$@"
# The portal (lint, build reproducibility, JS unit and end-to-end tests) with the whole run.
if [ "$whole" = 1 ]; then
    # `cargo test --workspace` above built target/debug/fundtrail (the CLI tests run it):
    # building it again with `-p fundtrail` would resolve other features and rebuild.
    FUNDTRAIL_BUILD=0 bash "$SCRIPT_DIR/test-portal.sh"
    # A third-party OpenAPI fuzzer (schemathesis) against the public API of the demo's year
    # on the debug binary: no 5xx, every answer as schemas/openapi.json says.
    bash "$SCRIPT_DIR/api-fuzz.sh" --fundtrail target/debug/fundtrail
    # The short fault campaign (docs/reliability.md): 10 cycles against a 3-node cluster
    # rendered from deploy/, a few minutes; fails on a lost, duplicated or overspent event,
    # diverging replicas, an inconsistent checkpoint, a gap in the SSE feed or a 5xx from
    # a healthy replica. The debug binaries `cargo test --workspace` built above.
    bash "$SCRIPT_DIR/fault-campaign.sh" --debug --no-build --cycles 10 --out target/fault-campaign-ci
fi
