#!/usr/bin/env bash
# The fault suite (tests/all/faults.rs) with its figures: runs every case RUNS times with
# the load kept up SECS seconds after each fault, then prints the results table
# (docs/reliability.md holds one). Loopback only; every case stops by itself.
#
#   scripts/faults.sh            # long form: NIMBUS_FAULTS_SECS=10, 3 runs, medians
#   scripts/faults.sh --short    # what CI runs with the other tests: 3 s, 1 run
#
# Environment: NIMBUS_FAULTS_SECS (seconds of load after the fault), NIMBUS_FAULTS_RUNS
# (runs per case; time to recover is the median over them), NIMBUS_FAULTS_OUT (where the
# raw rows go; default a temp file). Needs what scripts/setup.sh test installs
# (nats-server, redis-server, the wasm targets).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"

secs="${NIMBUS_FAULTS_SECS:-10}"
runs="${NIMBUS_FAULTS_RUNS:-3}"
if [[ "${1:-}" == "--short" ]]; then
    secs="${NIMBUS_FAULTS_SECS:-3}"
    runs="${NIMBUS_FAULTS_RUNS:-1}"
fi
out="${NIMBUS_FAULTS_OUT:-$(mktemp -t nimbus-faults.XXXXXX)}"
: >"$out"

export NIMBUS_FAULTS_SECS="$secs" NIMBUS_FAULTS_REPORT="$out"
started=$(date +%s)
failed=0
for run in $(seq 1 "$runs"); do
    printf '==> fault suite, run %s of %s (%s s of load after each fault)\n' "$run" "$runs" "$secs" >&2
    # A failed run still leaves its rows; the table is printed and the script fails at the end.
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --locked -p nimbus-tests -E 'test(/^faults::/)' --no-fail-fast || failed=1
    else
        cargo test --locked -p nimbus-tests --test all -- faults:: --test-threads 1 || failed=1
    fi
done
took=$(($(date +%s) - started))

# One row per case and run: case, acked, lost, failed, requests, recover_ms, rss_before_kib,
# rss_after_kib, note. Medians over runs; lost is the largest of any run.
printf '\n%s run(s) per case, %s s of load after each fault, %s s in all; raw rows: %s\n\n' \
    "$runs" "$secs" "$took" "$out"
printf '| Case | Acknowledged writes | Acknowledged writes lost | Requests failed | Time to recover (ms, median [min–max]) | Host RSS before → after (MiB) |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
awk -F'\t' '
function median(list,    n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function minmax(list,    n, a, i, lo, hi) {
    n = split(list, a, " "); lo = a[1]; hi = a[1]
    for (i = 2; i <= n; i++) { if (a[i] + 0 < lo + 0) lo = a[i]; if (a[i] + 0 > hi + 0) hi = a[i] }
    return lo "–" hi
}
{
    if (!($1 in seen)) { seen[$1] = 1; order[++cases] = $1 }
    acked[$1] = acked[$1] " " $2; failed[$1] = failed[$1] " " $4
    recover[$1] = recover[$1] " " $6; before[$1] = before[$1] " " $7; after[$1] = after[$1] " " $8
    if ($3 + 0 > lost[$1] + 0 || !($1 in lost)) lost[$1] = $3
}
END {
    for (i = 1; i <= cases; i++) {
        c = order[i]
        printf "| %s | %d | %d | %d | %d [%s] | %.1f → %.1f |\n", c, median(acked[c]), lost[c],
            median(failed[c]), median(recover[c]), minmax(recover[c]),
            median(before[c]) / 1024, median(after[c]) / 1024
    }
}' "$out"

if awk -F'\t' '$3 != 0 { bad = 1 } END { exit !bad }' "$out"; then
    echo "acknowledged writes were lost" >&2
    exit 1
fi
if [[ $failed != 0 ]]; then
    echo "a fault case failed (see above); the table holds the cases that finished" >&2
    exit 1
fi
