#!/usr/bin/env bash
# The quick start's "run" command: installs what the build needs, builds the actors and
# `wash`, and runs `wash up` in the repository root, which deploys app.yaml (the
# petclinic demo, standalone, file-backed data in .data/petclinic) and serves it on
# http://127.0.0.1:8080/. Extra arguments go to `wash up` (e.g. --nats-server).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
# Install only what running needs: the wasm targets, plus nats-server when asked to
# start one (the test-only tools come with `scripts/setup.sh test`).
job=run
for arg in "$@"; do
    case "$arg" in --nats-server | --nats-server=*) job=lattice ;; esac
done
bash scripts/setup.sh "$job"
echo "==> building the actors (scripts/build-actors.sh)" >&2
bash scripts/build-actors.sh >/dev/null
echo "==> building wash (cargo build -p wash-cli)" >&2
cargo build --quiet -p wash-cli
exec ./target/debug/wash up "$@"
