#!/usr/bin/env bash
# The HTTP benchmarks of issue 6: HTTP → kvcounter → KV add → response under `wrk` at
# c = 1, 16 and 64, standalone (in-process providers, memory KV) vs an axum handler doing
# the increment natively, and in lattice mode (providers out of process over nats-server)
# vs axum → async-nats request → a native responder. Ours and the baseline alternate in
# one run; the bench prints each run, a summary and the `ours / baseline / ratio` lines.
#
# Usage: scripts/bench-http.sh [standalone|lattice|lattice-signed|lattice-unsigned]
# Env:   NIMBUS_BENCH_SECS (per wrk run, default 3), NIMBUS_BENCH_ROUNDS (default 2),
#        NIMBUS_BENCH_CONNECTIONS (default 1,16,64), NIMBUS_BENCH_INSTANCES (kvcounter instances, default 4).
#
# Installs wrk (Debian package `wrk`) when missing, builds the provider binaries and the
# bench in release (slow the first time: wasmtime), then runs it. nats-server comes from
# `scripts/setup.sh lattice` (or NATS_SERVER).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1; then
    echo "installing wrk..." >&2
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi

# The lattice case runs these binaries under the host's supervisor; the bench finds them
# next to its own target directory (target/release). nimbus-lattice is in the same build so
# that feature unification gives the providers the host's fast Ed25519 tables too.
cargo build --release -p nimbus-provider-httpserver -p nimbus-provider-keyvalue -p nimbus-lattice --bins --lib
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -p nimbus-benches --bench http -- "$@"
