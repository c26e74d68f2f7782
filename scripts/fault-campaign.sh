#!/usr/bin/env bash
# The fault campaign, one command: a 3-node JetStream cluster rendered from deploy/
# (R3, sync_interval: always, the restricted account) on free loopback ports, three
# `fundtrail serve` replicas, clients posting donations, votes, approvals and
# conflicting payouts, and a nemesis injecting one fault per cycle (kill -9 or
# SIGSTOP of a node, kill of the stream leader, kill -9 of a replica, a restart of
# the whole cluster, a node cut off from the others). A checker then proves nothing
# acknowledged was lost or applied twice, no overspend, replicas identical,
# checkpoints consistent, the SSE feed gapless, `fundtrail verify` passes.
#
#   scripts/fault-campaign.sh --cycles 100            # release build (docs/reliability.md)
#   scripts/fault-campaign.sh --debug --cycles 10     # debug build
#   scripts/fault-campaign.sh --debug --no-build …    # the binaries already built (CI)
#
# Other arguments go to the campaign binary: --clients N, --hold-ms MS, --quiet-ms MS,
# --out DIR (default target/fault-campaign: report.json and report.md).
# Exits non-zero when any check fails.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$SCRIPT_DIR/.."

exports="$("$SCRIPT_DIR/install-test-deps.sh")"
eval "$(printf '%s\n' "$exports" | tail -n1)"
export NATS_SERVER_BIN

profile=release
build=1
args=()
for arg in "$@"; do
    case "$arg" in
        --debug) profile=debug ;;
        # Use the binaries already in target/ (scripts/test.sh: `cargo test --workspace`
        # built both with the workspace's features; building again would rebuild).
        --no-build) build=0 ;;
        *) args+=("$arg") ;;
    esac
done

if [ "$build" = 1 ]; then
    flag=()
    [ "$profile" = release ] && flag=(--release)
    cargo build "${flag[@]}" -p fundtrail -p fundtrail-testkit --bin fundtrail --bin fault-campaign
fi
exec "target/$profile/fault-campaign" --fundtrail "target/$profile/fundtrail" --deploy deploy "${args[@]}"
