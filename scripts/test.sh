#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, builds the actor
# fixtures, checks formatting and lints, then runs every test. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step() { printf '\n==> %s\n' "$*" >&2; }

step "setup"
bash scripts/setup.sh test

step "build actor fixtures"
bash scripts/build-actors.sh

step "format"
cargo fmt --all -- --check
(cd actors && cargo fmt --all -- --check)

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
(cd actors && cargo clippy --workspace --locked --target wasm32-unknown-unknown -- -D warnings)

step "build the 0.x compat checker"
# compat/ctl-0x is its own workspace (wasmcloud-control-interface 0.28.1 with its old
# async-nats); the test compat_0x runs this binary against a live host and never builds it.
(cd compat/ctl-0x && cargo fmt -- --check && cargo build --locked)

step "build the binaries the tests run"
# tests/all/lattice_demo.rs runs scripts/lattice-demo.sh with SKIP_BUILD=1 (a test never
# builds while other tests run the same binaries): it needs wash and the provider
# binaries in target/debug, next to each other, and the actors built above.
cargo build --locked -p wash-cli -p nimbus-provider-httpserver -p nimbus-provider-keyvalue

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    cargo test --workspace --locked --doc
else
    cargo test --workspace --locked --no-fail-fast
fi

step "fault suite with auth on (wash lattice init creds, then TLS too)"
# The same eight fault cases on lattices only their members can reach: every host,
# provider and test client connects with the creds of its role (the test binary is the
# one built above; `wash lattice init` is target/debug/wash).
for auth in 1 tls; do
    if cargo nextest --version >/dev/null 2>&1; then
        NIMBUS_FAULTS_AUTH=$auth cargo nextest run --locked -p nimbus-tests --no-fail-fast -E 'test(/^faults::faults_/)'
    else
        NIMBUS_FAULTS_AUTH=$auth cargo test --locked -p nimbus-tests --test all -- faults::faults_
    fi
done

step "wash new + wash build + wash dev: the templates build as they are"
# These tests compile the projects `wash new` generates (actors in actors/target, where the
# fixtures step compiled the SDK already; the provider in target/), so they run here on
# their own, one at a time, never next to other tests.
cargo test --locked -p wash-cli --test new_build -- --ignored --test-threads=1
# `wash dev` on a generated project: served, an edit swapped in under load with no failed
# request, a compile error keeps the old build serving (the benchmark is scripts/bench-dev.sh).
cargo test --locked -p wash-cli --test dev -- --ignored --test-threads=1 --skip bench_

step "WIDL golden vectors"
# widl/golden is its own workspace (the published interface crates need rmp 0.8.10): it
# re-encodes the golden values with the published crates and fails if vectors.json, which
# the conformance tests above compare our generated types with, is not what they give.
(cd widl/golden && cargo fmt -- --check && cargo run --quiet --locked -- check vectors.json)

step "actor unit tests (native)"
# The actors' logic (petclinic domain rules, routing, the guest SDK) runs on the host
# target too; the wasm builds of the same code are exercised by the tests above.
(cd actors && cargo test --locked -p nimbus-actor -p echo -p wasi-echo -p kvcounter -p http-trap \
    -p petclinic-model -p petclinic-owners -p petclinic-vets -p petclinic-visits -p petclinic-ui -p petclinic-gateway)

step "browser tests (headless chromium)"
# The petclinic web app in Debian's chromium via playwright-core, against `wash up` on a
# copy of app.yaml (free port, temp data). Prints `browser: N passed, M failed`.
cargo build --locked -p wash-cli
bash tests/browser/run.sh
