#!/usr/bin/env bash
# Issue 13's edit-to-served benchmark: the hello template under `wash dev`, an edit of its
# greeting saved 5 times; each time from the save until the new body answers on HTTP
# (poll → debounce → cargo build → sign → load → swap), median of 5. The baseline is the
# same edit built by cargo alone (`cargo build --release --target wasm32-unknown-unknown`,
# what `wash build` runs), median of 5. Prints both series, the medians and the ratio.
#
# It is the ignored test `bench_edit_to_served` in wash-cli/tests/dev.rs, run with the
# debug `wash` (the one the README's quick start runs). Builds in actors/target, where
# scripts/build-actors.sh compiled the SDK (run that first on a fresh clone).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
cargo test --locked -p wash-cli --test dev -- --ignored --exact bench_edit_to_served --nocapture 2>&1 |
    grep -E '^(edit-to-served|cargo build alone|median of)|panicked|FAILED|test result'
