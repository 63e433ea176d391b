#!/usr/bin/env bash
# The petclinic on a two-host lattice, as plain processes (the same topology as
# docker-compose.yml): a nats-server with JetStream, host `one` with the HTTP server and
# key-value providers running out of process, host `two`, and `wash app deploy` spreading
# deploy/petclinic-lattice.yaml over both. Serves http://127.0.0.1:$HTTP_PORT/.
# `wash app deploy` stores the manifest in the lattice; the hosts' reconciler places it.
#
#   scripts/lattice-demo.sh           run until Ctrl-C
#   scripts/lattice-demo.sh --check   deploy, check the API end to end, stop (used by tests)
#   scripts/lattice-demo.sh --ha      three hosts and deploy/petclinic-ha.yaml (two replicas
#                                     of everything, data in NATS KV): kill a host and
#                                     watch `wash app status petclinic` heal it
#
# Environment: NATS_PORT (default 4222), HTTP_PORT (default 8080), DEMO_DIR (work dir;
# default a temp dir, removed at exit; its keys/ holds the lattice's cluster key and
# home/.wash/lattices/default its creds), DEMO_AUTH=0 for a lattice without credentials,
# SKIP_BUILD=1 to use the binaries already built,
# PROFILE=release to run target/release binaries (benchmarks).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"
check=0
ha=0
for arg in "$@"; do
    case "$arg" in
        --check) check=1 ;;
        --ha) ha=1 ;;
        *) printf 'unknown argument %s (use --check and/or --ha)\n' "$arg" >&2; exit 2 ;;
    esac
done
# Seconds without an answer after which a host is declared lost and its share re-placed.
lost_after="${LOST_AFTER:-10}"
nats_port="${NATS_PORT:-4222}"
http_port="${HTTP_PORT:-8080}"
work="${DEMO_DIR:-$(mktemp -d)}"
mkdir -p "$work"
log() { printf '[lattice-demo] %s\n' "$*" >&2; }

pids=()
cleanup() {
    # Hosts first (newest first), NATS last, so the hosts can drain and stop their
    # providers while the server is still there. SIGTERM: background jobs of a
    # non-interactive shell ignore SIGINT.
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    if [ -z "${DEMO_DIR:-}" ]; then rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building actors, wash and the provider binaries"
    bash scripts/setup.sh lattice
    bash scripts/build-actors.sh >/dev/null
    cargo build --quiet -p wash-cli -p nimbus-provider-httpserver -p nimbus-provider-keyvalue
fi
target_dir="${CARGO_TARGET_DIR:-$repo_root/target}"
wash="$target_dir/${PROFILE:-debug}/wash"
export WASH_KEYS="$work/keys"
export WASH_NATS_URL="nats://127.0.0.1:$nats_port"

# An authenticated lattice (DEMO_AUTH=0 for an open one): `wash lattice init` writes the
# operator, accounts and role creds and a nats-server configuration with JetStream's
# synchronous writes; the hosts connect with host.creds, the providers they start get
# their own creds, and `wash app deploy`/`wash call` use wash.creds, all found by lattice
# name under $HOME/.wash/lattices (kept in the work dir here).
export HOME="$work/home"
lattice_dir="$HOME/.wash/lattices/${WASH_LATTICE:-default}"
if [ "${DEMO_AUTH:-1}" = 1 ]; then
    log "creating the lattice's credentials (wash lattice init)"
    "$wash" lattice init --port "$nats_port" --nats-store "$work/jetstream" --force >"$work/init.log"
    nats_conf="$lattice_dir/nats-server.conf"
else
    # sync_interval: always makes JetStream write to disk before it acknowledges, so the
    # deployed apps, links and the reconciler lease survive a crash of the server's
    # machine (the default flushes every two minutes).
    nats_conf="$work/nats-server.conf"
    cat >"$nats_conf" <<CONF
listen: "127.0.0.1:$nats_port"
jetstream {
  store_dir: "$work/jetstream"
  sync_interval: always
}
CONF
fi
log "starting nats-server on port $nats_port"
nats-server -c "$nats_conf" >"$work/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$nats_port") 2>/dev/null && break
    sleep 0.1
done

# No seed is passed around: both hosts, `wash app deploy` and `wash call` share
# WASH_KEYS, where the first of them creates the lattice's cluster key
# (`wash lattice key show` prints it). A seed given in the environment still wins.
start_host() { # name, extra args...
    local name="$1"
    shift
    mkdir -p "$work/$name"
    (cd "$work/$name" && exec "$wash" up --label "host=$name" --host-lost-after "$lost_after" "$@") >"$work/$name.log" 2>&1 &
    pids+=($!)
    host_pid["$name"]=$!
}
declare -A host_pid
if [ "$ha" = 1 ]; then
    hosts=(one two three)
    for name in "${hosts[@]}"; do start_host "$name"; done
else
    hosts=(one two)
    start_host one --providers-out-of-process
    start_host two
fi
for name in "${hosts[@]}"; do
    for _ in $(seq 300); do
        grep -q '^ready' "$work/$name.log" && break
        if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
        sleep 0.1
    done
    grep -q '^ready' "$work/$name.log" || { log "host $name did not start:"; cat "$work/$name.log" >&2; exit 1; }
done
log "hosts ${hosts[*]} are up"

if [ "$ha" = 1 ]; then
    manifest="$work/petclinic-ha.yaml"
    sed -e "s|\.\./actors/target/wasm/|$repo_root/actors/target/wasm/|" \
        -e "s|address: \"127.0.0.1:8080\"|address: \"127.0.0.1:$http_port\"|" \
        -e "s|nats://127.0.0.1:4222|$WASH_NATS_URL|" \
        deploy/petclinic-ha.yaml >"$manifest"
    if [ "${DEMO_AUTH:-1}" = 1 ]; then
        # backend=nats data lives in the lattice's data account, reached with its creds.
        sed -i "s|bucket: petclinic }|bucket: petclinic, creds: \"$lattice_dir/keyvalue.creds\" }|" "$manifest"
    fi
else
    manifest="$work/petclinic-lattice.yaml"
    sed -e "s|\.\./actors/target/wasm/|$repo_root/actors/target/wasm/|" \
        -e "s|address: \"0.0.0.0:8080\"|address: \"127.0.0.1:$http_port\"|" \
        deploy/petclinic-lattice.yaml >"$manifest"
fi
"$wash" app deploy "$manifest" --wait-secs 60

base="http://127.0.0.1:$http_port"
for _ in $(seq 150); do
    curl -fsS "$base/api/vets" >/dev/null 2>&1 && break
    sleep 0.2
done
log "petclinic is serving on $base/"

if [ "$ha" = 1 ] && [ "$check" = 1 ]; then
    fail() { log "CHECK FAILED: $*"; "$wash" app status petclinic >&2 || true; exit 1; }
    victim="$("$wash" --output json app status petclinic | python3 -c 'import json,sys; s=json.load(sys.stdin)["status"]; print([p for p in s["providers"] if p["name"]=="http"][0]["running"][0]["host_id"])')" || fail "no HTTP host in the status"
    for name in "${hosts[@]}"; do
        grep -q "^host $victim " "$work/$name.log" && { log "kill -9 host $name ($victim), which serves HTTP"; kill -9 "${host_pid[$name]}"; }
    done
    healed=0
    for _ in $(seq 120); do
        st="$("$wash" --output json app status petclinic 2>/dev/null)" || { sleep 0.5; continue; }
        if ! grep -q "$victim" <<<"$st" && grep -q '"state": "running"' <<<"$st"; then
            healed=1
            break
        fi
        sleep 0.5
    done
    "$wash" app status petclinic
    [ "$healed" = 1 ] || fail "the petclinic did not run again without host $victim within 60 s"
    curl -fsS "$base/api/vets" >/dev/null || fail "GET /api/vets after the heal"
    log "check passed: the petclinic runs again without host $victim"
    exit 0
fi

if [ "$check" = 1 ]; then
    fail() { log "CHECK FAILED: $*"; for n in one two; do tail -20 "$work/$n.log" >&2; done; exit 1; }
    vets="$(curl -fsS "$base/api/vets")" || fail "GET /api/vets"
    grep -q '"specialties"' <<<"$vets" || fail "vets without specialties: $vets"
    davis="$(curl -fsS "$base/api/owners?lastName=Davis")" || fail "search"
    grep -q '"lastName":"Davis"' <<<"$davis" || fail "search by last name: $davis"
    status="$(curl -s -o "$work/created.json" -w '%{http_code}' -H 'content-type: application/json' \
        -d '{"firstName":"Lattice","lastName":"Demo","address":"1 Route St","city":"Natsville","telephone":"5550100"}' \
        "$base/api/owners")"
    [ "$status" = 201 ] || fail "create owner: $status $(cat "$work/created.json")"
    # Read whole answers before grepping: with pipefail, `curl | grep -q` fails when grep
    # stops reading at its first match and curl gets a broken pipe.
    demo="$(curl -fsS "$base/api/owners?lastName=Demo")" || fail "search for the new owner"
    grep -q '"firstName":"Lattice"' <<<"$demo" || fail "new owner not found: $demo"
    status="$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' -d '{"firstName":""}' "$base/api/owners")"
    [ "$status" = 400 ] || fail "invalid owner accepted: $status"
    # The lattice's own key, from the keys directory, signs this call: no flag needed.
    listed="$("$wash" call petclinic/vets ListVets)" || fail "wash call petclinic/vets ListVets"
    [ -n "$listed" ] || fail "wash call petclinic/vets ListVets answered nothing"
    page="$(curl -fsS "$base/")" || fail "GET / (UI page)"
    grep -qi '<html' <<<"$page" || fail "UI page without <html>"
    if [ "${DEMO_AUTH:-1}" = 1 ]; then
        # A client without the lattice's creds is refused at connect.
        if HOME="$work/stranger" WASH_NATS_CREDS="" "$wash" ctl get hosts >/dev/null 2>&1; then
            fail "a client without creds could list the lattice's hosts"
        fi
    fi
    log "check passed: API answered across hosts one and two"
    exit 0
fi

if [ "$ha" = 1 ]; then
    log "watch it heal: in another shell run"
    log "  export WASH_NATS_URL=$WASH_NATS_URL WASH_KEYS=$WASH_KEYS WASH_NATS_CREDS=$lattice_dir/wash.creds"
    log "  watch -n1 $wash app status petclinic"
    log "and kill -9 one of the hosts: ${host_pid[one]} (one) ${host_pid[two]} (two) ${host_pid[three]} (three)"
fi
log "press Ctrl-C to stop"
wait "${pids[0]}"
