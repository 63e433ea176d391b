#!/usr/bin/env bash
# Builds the wasm test actors of the `actors/` workspace and collects them as
# actors/target/wasm/<package>.wasm:
#   echo.wasm          nimbus-actor SDK, imports from "wapc"     (wasm32-unknown-unknown)
#   echo-wasmbus.wasm  same source, imports from "wasmbus"        (wasm32-unknown-unknown)
#   wasi-echo.wasm     nimbus-actor SDK + std I/O                  (wasm32-wasip1)
#   wapc-echo.wasm     published wapc-guest 0.4                    (wasm32-unknown-unknown)
#   kvcounter.wasm     HTTP request counter over wasmcloud:keyvalue (wasm32-unknown-unknown)
#   http-trap.wasm     HTTP handler that traps on /trap (wasm32-unknown-unknown)
#   petclinic-{gateway,owners,vets,visits,ui}.wasm
#                      the petclinic demo actors (actors/petclinic) (wasm32-unknown-unknown)
# Works from any directory; a second run only re-checks (cargo is incremental and unchanged
# outputs are not copied again).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
actors="$repo_root/actors"
cd "$actors"
# Always this workspace's own target dir, whatever the caller's environment says.
export CARGO_TARGET_DIR="$actors/target"

installed_targets="$(rustup target list --installed)"
for target in wasm32-unknown-unknown wasm32-wasip1; do
    if ! grep -qx "$target" <<<"$installed_targets"; then
        rustup target add "$target" >/dev/null 2>&1 || {
            echo "build-actors: rustup target add $target failed" >&2
            exit 1
        }
    fi
done

# One cargo invocation per feature set: packages built together get their dependencies'
# features unified (echo-wasmbus turns on nimbus-actor/wasmbus, which echo must not get).
build() {
    local target="$1"
    shift
    cargo build --quiet --release --locked --target "$target" "$@"
}
build wasm32-unknown-unknown -p echo -p wapc-echo -p kvcounter -p http-trap
build wasm32-unknown-unknown -p echo-wasmbus
build wasm32-wasip1 -p wasi-echo
build wasm32-unknown-unknown -p petclinic-gateway -p petclinic-owners -p petclinic-vets \
    -p petclinic-visits -p petclinic-ui

out="$CARGO_TARGET_DIR/wasm"
mkdir -p "$out"
# package  target  artifact (the lib name: package name with - turned into _)
while read -r package target; do
    src="$CARGO_TARGET_DIR/$target/release/${package//-/_}.wasm"
    dst="$out/$package.wasm"
    if ! cmp -s "$src" "$dst"; then
        cp "$src" "$dst"
    fi
    printf '%-24s %9d bytes  %s\n' "$package.wasm" "$(stat -c %s "$dst")" "$target"
done <<'LIST'
echo wasm32-unknown-unknown
echo-wasmbus wasm32-unknown-unknown
wasi-echo wasm32-wasip1
wapc-echo wasm32-unknown-unknown
kvcounter wasm32-unknown-unknown
http-trap wasm32-unknown-unknown
petclinic-gateway wasm32-unknown-unknown
petclinic-owners wasm32-unknown-unknown
petclinic-vets wasm32-unknown-unknown
petclinic-visits wasm32-unknown-unknown
petclinic-ui wasm32-unknown-unknown
LIST
