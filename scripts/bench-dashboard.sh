#!/usr/bin/env bash
# What an open dashboard costs a host: HTTP → kvcounter → KV add → response under `wrk`,
# standalone `wash up` (release build), in three configurations that alternate within
# one run so machine drift hits all alike:
#   off       no metrics, no dashboard
#   metrics   --metrics-addr (the call metrics the dashboard needs, nobody reading them)
#   dashboard --dashboard, with a client on /api/stream (a view built and pushed each second)
# The figure of interest is dashboard / metrics (the dashboard's own cost); metrics / off
# is the metrics' cost (see "Metrics on vs off" in docs/benchmarks.md).
#
# Usage: scripts/bench-dashboard.sh
# Env:   NIMBUS_BENCH_SECS (per wrk run, default 5), NIMBUS_BENCH_ROUNDS (default 3),
#        NIMBUS_BENCH_CONNECTIONS (default 16).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

secs="${NIMBUS_BENCH_SECS:-5}"
rounds="${NIMBUS_BENCH_ROUNDS:-3}"
conns="${NIMBUS_BENCH_CONNECTIONS:-16}"

command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
[ -f actors/target/wasm/kvcounter.wasm ] || bash scripts/build-actors.sh
cargo build --release -p wash-cli >&2
wash="$root/target/release/wash"

tmp="$(mktemp -d)"
# Every process started is noted here (they start in subshells), and stopped on exit.
cleanup() {
    if [ -f "$tmp/pids" ]; then
        while read -r pid; do kill "$pid" 2>/dev/null || true; done <"$tmp/pids"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts `wash up` with the given flags on a fresh HTTP port; prints "PID PORT".
start_up() {
    local port dir
    port="$(free_port)"
    dir="$(mktemp -d -p "$tmp")"
    cp actors/target/wasm/kvcounter.wasm "$dir/"
    cat >"$dir/app.yaml" <<EOF
name: bench
actors:
  - name: kvcounter
    path: kvcounter.wasm
    instances: 4
    capabilities: [wasmcloud:httpserver, wasmcloud:keyvalue]
providers:
  - name: http
    builtin: httpserver
  - name: kv
    builtin: keyvalue
links:
  - actor: kvcounter
    provider: http
    values: { port: "$port" }
  - actor: kvcounter
    provider: kv
    values: { backend: memory }
EOF
    # `exec`: the background pid is wash itself; no pipe of this $(...) kept open.
    (cd "$dir" && exec env WASH_KEYS="$tmp/keys" "$wash" up app.yaml "$@" >"$dir/out.txt" 2>&1) \
        </dev/null >/dev/null 2>&1 &
    local pid=$!
    echo "$pid" >>"$tmp/pids"
    for _ in $(seq 1 200); do
        grep -q '^ready' "$dir/out.txt" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '^ready' "$dir/out.txt" || { cat "$dir/out.txt" >&2; exit 1; }
    echo "$pid $port $dir"
}

run_case() {
    local name="$1"; shift
    local info pid port dir sse=""
    info="$(start_up "$@")"
    read -r pid port dir <<<"$info"
    if [ "$name" = dashboard ]; then
        local url
        url="$(sed -n 's/^dashboard at //p' "$dir/out.txt")"
        curl -sN "${url}api/stream" </dev/null >/dev/null 2>&1 &
        sse=$!
        echo "$sse" >>"$tmp/pids"
    fi
    wrk -t2 -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null # warm-up
    local rps
    rps="$(wrk -t2 -c"$conns" -d"${secs}s" "http://127.0.0.1:$port/" | sed -n 's/^Requests\/sec: *//p')"
    [ -n "$sse" ] && kill "$sse" 2>/dev/null || true
    kill "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    echo "$name $rps"
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk -c$conns, ${secs}s x $rounds rounds"
results="$tmp/results"
for round in $(seq 1 "$rounds"); do
    run_case off | tee -a "$results"
    run_case metrics --metrics-addr 127.0.0.1:0 | tee -a "$results"
    run_case dashboard --dashboard 127.0.0.1:0 | tee -a "$results"
done
python3 - "$results" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
med = {name: statistics.median(float(r) for n, r in rows if n == name) for name in ("off", "metrics", "dashboard")}
for name, value in med.items():
    print(f"median {name:9} {value:10.0f} req/s")
print(f"dashboard / metrics = {med['dashboard'] / med['metrics']:.3f}")
print(f"metrics / off       = {med['metrics'] / med['off']:.3f}")
EOF
