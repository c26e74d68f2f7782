#!/usr/bin/env bash
# The pure crates stay pure: fundtrail-domain, fundtrail-envelope and
# fundtrail-ledger must not depend, directly or transitively, on an async
# runtime, NATS, sled or an HTTP stack (ARCHITECTURE.md: "no I/O"). The same
# fold runs in the server, in an auditor's replay and, for the ledger, in a
# browser; a runtime or a store in their graph breaks that.
#
# Checks normal dependencies (not dev or build ones) on every target with every
# feature on, so an optional dependency behind a feature is caught too.
# Exits 1 naming each pure crate, the forbidden crate and one path to it.
#
# Usage: scripts/check-deps.sh        (CI calls it from .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

PURE_CRATES=(fundtrail-domain fundtrail-envelope fundtrail-ledger)
FORBIDDEN_CRATES=(tokio async-nats sled axum hyper)

failed=0
for crate in "${PURE_CRATES[@]}"; do
    # One line per dependency, prefixed with its depth: "2tokio v1.48.0".
    if ! tree=$(cargo tree --quiet -p "$crate" -e normal --all-features --target all --prefix depth); then
        echo "check-deps: cargo tree failed for $crate" >&2
        exit 2
    fi
    # Keep the chain of names from the crate down to each line; print the chain
    # to the first occurrence of each forbidden crate.
    offending=$(awk -v forbidden="${FORBIDDEN_CRATES[*]}" '
        BEGIN { n = split(forbidden, names, " "); for (i = 1; i <= n; i++) bad[names[i]] = 1 }
        {
            match($0, /^[0-9]+/)
            depth = substr($0, 1, RLENGTH) + 0
            split(substr($0, RLENGTH + 1), fields, " ")
            name = fields[1]
            chain[depth] = name
            if ((name in bad) && !(name in seen)) {
                seen[name] = 1
                path = chain[0]
                for (d = 1; d <= depth; d++) path = path " -> " chain[d]
                print name ": " path
            }
        }' <<<"$tree")
    if [[ -n "$offending" ]]; then
        failed=1
        while IFS= read -r line; do
            echo "check-deps: $crate must not depend on ${line%%:*} (normal dependency path: ${line#*: })" >&2
        done <<<"$offending"
    fi
done

if [[ $failed -ne 0 ]]; then
    echo "check-deps: FAILED: ${PURE_CRATES[*]} must stay free of ${FORBIDDEN_CRATES[*]}; move the I/O to a shell crate (see ARCHITECTURE.md)" >&2
    exit 1
fi
echo "check-deps: ok: ${PURE_CRATES[*]} depend on none of ${FORBIDDEN_CRATES[*]}"
