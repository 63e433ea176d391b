#!/usr/bin/env bash
# The README's "run" command until `wash up` exists: builds everything, signs the echo
# actor with fresh keys, shows its claims and calls it through `wash call`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"

bash scripts/setup.sh
bash scripts/build-actors.sh
cargo build --release --locked -p wash-cli
wash=target/release/wash
out=target/quickstart
mkdir -p "$out"

printf '\n==> wash claims sign (keys are generated and stored under ${WASH_KEYS:-~/.wash/keys})\n'
"$wash" claims sign actors/target/wasm/echo.wasm --name echo --ver 0.1.0 --rev 1 \
    --cap wasmcloud:keyvalue -o "$out/echo_s.wasm"

printf '\n==> wash claims inspect\n'
"$wash" claims inspect "$out/echo_s.wasm"

printf '\n==> wash call Echo\n'
"$wash" call --wasm "$out/echo_s.wasm" Echo --data "hello from nimbus"
printf '\n'
