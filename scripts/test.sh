#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, builds the actor
# fixtures, checks formatting and lints, then runs every test. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }

step "setup"
bash scripts/setup.sh

step "build actor fixtures"
bash scripts/build-actors.sh

step "format"
cargo fmt --all -- --check
(cd actors && cargo fmt --all -- --check)

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd actors && cargo clippy --workspace --locked --target wasm32-unknown-unknown -- -D warnings)

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi

step "actor unit tests (native)"
# The actors' logic (petclinic domain rules, routing, the guest SDK) runs on the host
# target too; the wasm builds of the same code are exercised by the tests above.
(cd actors && cargo test --locked -p nimbus-actor -p kvcounter -p petclinic-model \
    -p petclinic-owners -p petclinic-vets -p petclinic-visits -p petclinic-ui -p petclinic-gateway)
