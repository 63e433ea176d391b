#!/usr/bin/env bash
# Runs the browser tests (headless Debian chromium via playwright-core) and prints one
# summary line, `browser: N passed, M failed`. Needs target/debug/wash
# (`cargo build -p wash-cli`), the actors (`bash scripts/build-actors.sh`) and
# /usr/bin/chromium (`scripts/setup.sh test` installs it and runs `npm ci` here).
# Spec files: petclinic.spec.mjs (the petclinic web app) and dashboard.spec.mjs (the
# lattice dashboard of `wash up --dashboard`). The screenshots land in
# tests/artifacts/petclinic.png and tests/artifacts/dashboard.png.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund >&2
fi

tap="$(mktemp)"
trap 'rm -f "$tap"' EXIT
status=0
# spec for people, TAP to a file for the counts.
node --test --test-timeout=120000 \
    --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$tap" \
    petclinic.spec.mjs dashboard.spec.mjs || status=$?

passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$tap" | tail -n 1)
if [ -z "$passed" ] || [ -z "$failed" ]; then
    echo "browser: the test runner reported no counts (exit $status)" >&2
    exit 1
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1 # a failure outside any test (setup, teardown): count it
fi
echo "browser: $passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
    exit 1
fi
