#!/usr/bin/env bash
# Issue 14's benchmark: HTTP -> kvcounter -> keyvalue on a lattice with NATS credentials and
# TLS against the same lattice without either. Each mode is one `wash up --nats-server`
# (its own nats-server, one host, kvcounter, both providers out of process, in-memory KV):
#
#   open      `--no-nats-auth`: no credentials, plain TCP (the baseline)
#   auth      `wash lattice init`: operator/account/user JWTs, subject permissions by role
#   auth-tls  `wash lattice init --tls`: the same, and every connection over TLS
#
# wrk runs GET /bench against each mode in turn, BENCH_ROUNDS times (interleaved, so a
# busy machine hurts every mode alike), and the medians and the ratios to `open` are
# printed. Invocation signing stays at its default (on) in every mode.
#
# Usage: scripts/bench-auth.sh   Env: BENCH_SECS (default 10), BENCH_CONNECTIONS (16),
# BENCH_ROUNDS (3). Release binaries; the first build is slow (wasmtime).
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"
secs="${BENCH_SECS:-10}"
conns="${BENCH_CONNECTIONS:-16}"
rounds="${BENCH_ROUNDS:-3}"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }
command -v nats-server >/dev/null || { echo "nats-server not found: scripts/setup.sh test installs it" >&2; exit 1; }
bash scripts/build-actors.sh >/dev/null
echo "==> building release binaries (wash, both providers)" >&2
cargo build --quiet --release --locked -p wash-cli -p nimbus-provider-httpserver -p nimbus-provider-keyvalue
wash="$repo_root/target/release/wash"
work="$(mktemp -d)"
up_pid=""
stop_up() {
    if [ -n "$up_pid" ]; then
        kill -INT "$up_pid" 2>/dev/null || true
        wait "$up_pid" 2>/dev/null || true
        up_pid=""
    fi
}
trap 'stop_up; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# One app for every mode: the ports are fixed per mode below.

cp actors/target/wasm/kvcounter.wasm "$work/kvcounter.wasm"

# Prints "req/s p50_ms p99_ms non2xx" for one wrk run.
run_wrk() {
    wrk -t2 "-c$conns" "-d${secs}s" --latency "$1" | python3 -c '
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

# Starts `wash up` for one mode and waits until the counter answers.
start_mode() { # mode nats_port http_port
    local mode="$1" nats_port="$2" http_port="$3" dir="$work/$1"
    mkdir -p "$dir/home" "$dir/keys"
    cat >"$dir/app.yaml" <<YAML
name: bench-$mode
actors:
  - name: kvcounter
    path: $work/kvcounter.wasm
    capabilities: [wasmcloud:httpserver, wasmcloud:keyvalue]
providers:
  - name: http
    path: $repo_root/target/release/nimbus-httpserver-provider
    contract: wasmcloud:httpserver
  - name: kv
    path: $repo_root/target/release/nimbus-keyvalue-provider
    contract: wasmcloud:keyvalue
links:
  - actor: kvcounter
    provider: http
    values: { port: "$http_port" }
  - actor: kvcounter
    provider: kv
    values: { backend: memory }
YAML
    local extra=()
    case "$mode" in
        open) extra=(--no-nats-auth) ;;
        auth) HOME="$dir/home" WASH_KEYS="$dir/keys" "$wash" lattice init "bench-$mode" \
            --port "$nats_port" --nats-store "$dir/js" >/dev/null ;;
        auth-tls) HOME="$dir/home" WASH_KEYS="$dir/keys" "$wash" lattice init "bench-$mode" \
            --port "$nats_port" --nats-store "$dir/js" --tls >/dev/null ;;
    esac
    (cd "$dir" && HOME="$dir/home" WASH_KEYS="$dir/keys" exec "$wash" up \
        --nats-server "$nats_port" --nats-store "$dir/js" --lattice "bench-$mode" \
        "${extra[@]}" app.yaml >"$dir/up.log" 2>&1) &
    up_pid=$!
    local deadline=$((SECONDS + 60))
    until curl -fsS "http://127.0.0.1:$http_port/warmup" >/dev/null 2>&1; do
        if ((SECONDS > deadline)) || ! kill -0 "$up_pid" 2>/dev/null; then
            echo "mode $mode did not serve within 60 s:" >&2
            cat "$dir/up.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    if [ "$mode" = auth-tls ] && ! grep -q "^tls" "$dir/home/.wash/lattices/bench-$mode/auth.conf"; then
        echo "mode auth-tls: auth.conf has no tls block" >&2
        exit 1
    fi
    # Warm up the pools and connections before measuring.
    wrk -t2 "-c$conns" -d2s "http://127.0.0.1:$http_port/warmup" >/dev/null
}

modes=(open auth auth-tls)
declare -A results
for round in $(seq 1 "$rounds"); do
    for mode in "${modes[@]}"; do
        nats_port="$(free_port)"
        http_port="$(free_port)"
        rm -rf "${work:?}/$mode"
        start_mode "$mode" "$nats_port" "$http_port"
        row="$(run_wrk "http://127.0.0.1:$http_port/bench")"
        echo "round $round $mode: $row (req/s p50_ms p99_ms non-2xx)" >&2
        results[$mode]+="$row;"
        stop_up
    done
done

echo
echo "HTTP -> kvcounter -> keyvalue, lattice, c=$conns, ${secs} s x $rounds rounds (medians)"
python3 - "${results[open]}" "${results[auth]}" "${results[auth-tls]}" <<'PY'
import statistics, sys
names = ["open", "auth", "auth-tls"]
rows = {}
for name, text in zip(names, sys.argv[1:]):
    runs = [list(map(float, r.split())) for r in text.split(";") if r.strip()]
    rows[name] = [statistics.median(col) for col in zip(*runs)]
base = rows["open"][0]
print(f"{'mode':<10} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'vs open':>8}")
for name in names:
    rps, p50, p99, errs = rows[name]
    print(f"{name:<10} {rps:>8.0f} {p50:>8.2f} {p99:>8.2f} {errs:>8.0f} {rps / base:>7.2f}x")
PY
