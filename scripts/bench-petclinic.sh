#!/usr/bin/env bash
# The petclinic benchmarks of issue 7: `GET /api/owners?lastName=Davis` (gateway → owners
# → KV set and documents) and `POST /api/owners/{id}/pets/{id}/visits` (gateway → owners
# → visits → KV) under wrk at c=16, req/s and latency percentiles, in standalone mode
# (one `wash up`, in-process providers, file-backed KV) and in lattice mode
# (scripts/lattice-demo.sh: two hosts, providers out of process, file-backed KV).
#
# Usage: scripts/bench-petclinic.sh   Env: BENCH_SECS (default 10), BENCH_CONNECTIONS (16).
# Release binaries; the first build is slow (wasmtime).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"
secs="${BENCH_SECS:-10}"
conns="${BENCH_CONNECTIONS:-16}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
bash scripts/build-actors.sh >/dev/null
cargo build --quiet --release -p wash-cli -p nimbus-provider-httpserver -p nimbus-provider-keyvalue
wash="$repo_root/target/release/wash"
work="$(mktemp -d)"
pids=()
cleanup() {
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Prints "req/s p50 p99" for one wrk run.
run_wrk() { # url [lua script]
    local args=(-t2 "-c$conns" "-d${secs}s" --latency)
    [ -n "${2:-}" ] && args+=(-s "$2")
    wrk "${args[@]}" "$1" | python3 -c '
import re, sys
text = sys.stdin.read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
def pct(p):
    m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s)" % p, text, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v * {"us": 0.001, "ms": 1.0, "s": 1000.0}[u]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
print(f"{float(rps):.0f} {pct(50):.2f} {pct(99):.2f} {errors.group(1) if errors else 0}")'
}

bench_app() { # mode base_url
    local mode="$1" base="$2"
    local owner pet
    owner="$(curl -fsS -H 'content-type: application/json' \
        -d '{"firstName":"Bench","lastName":"Mark","address":"1 Load St","city":"Wrk","telephone":"5550199"}' \
        "$base/api/owners" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    pet="$(curl -fsS -H 'content-type: application/json' \
        -d '{"name":"Loady","birthDate":"2020-01-01","type":{"id":1}}' \
        "$base/api/owners/$owner/pets" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    cat >"$work/visit.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"date":"2024-05-01","description":"benchmark visit"}'
wrk.headers["Content-Type"] = "application/json"
LUA
    read -r rps p50 p99 err < <(run_wrk "$base/api/owners?lastName=Davis")
    printf '%-10s GET  /api/owners?lastName=Davis   c=%s  %8s req/s  p50 %7s ms  p99 %7s ms  non-2xx %s\n' "$mode" "$conns" "$rps" "$p50" "$p99" "$err"
    read -r rps p50 p99 err < <(run_wrk "$base/api/owners/$owner/pets/$pet/visits" "$work/visit.lua")
    printf '%-10s POST /api/owners/%s/pets/%s/visits c=%s  %8s req/s  p50 %7s ms  p99 %7s ms  non-2xx %s\n' "$mode" "$owner" "$pet" "$conns" "$rps" "$p50" "$p99" "$err"
}

wait_http() { for _ in $(seq 300); do curl -fsS "$1/api/vets" >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
# Standalone: the repository's app.yaml on a free port with its own data directory.
port="$(free_port)"
mkdir -p "$work/standalone"
sed -e "s|actors/target/wasm/|$repo_root/actors/target/wasm/|" -e "s|port: \"8080\"|port: \"$port\"|" \
    app.yaml >"$work/standalone/app.yaml"
(cd "$work/standalone" && WASH_KEYS="$work/keys" exec "$wash" up app.yaml) >"$work/standalone.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port" || { cat "$work/standalone.log" >&2; exit 1; }
bench_app standalone "http://127.0.0.1:$port"
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" || true; unset 'pids[-1]'

# Lattice: the two-host demo with release binaries.
port="$(free_port)"
NATS_PORT="$(free_port)" HTTP_PORT="$port" DEMO_DIR="$work/lattice" SKIP_BUILD=1 PROFILE=release \
    bash scripts/lattice-demo.sh >"$work/lattice.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$port" || { cat "$work/lattice.log" >&2; exit 1; }
bench_app lattice "http://127.0.0.1:$port"
