#!/usr/bin/env bash
# The README's second command: every check and every test, on a fresh machine too.
# Installs what the tests need, starts a throwaway PostgreSQL, runs fmt, clippy and all tests,
# and ends with one summary line `N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts/install-deps.sh test
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (SQLite and a throwaway PostgreSQL)"
scripts/with-postgres.sh cargo test --workspace --lib --bins --tests --no-fail-fast 2>&1 | tee -a "$log"
echo "== benchmark smoke runs (bench/smoke.sh: every benchmark with tiny counts, SQLite and PostgreSQL)"
scripts/with-postgres.sh bench/smoke.sh 2>&1 | tee -a "$log"

# (further test steps append their output to "$log" with `2>&1 | tee -a "$log"`)
echo "== OpenAPI document lint (scripts/lint-openapi.sh: Redocly CLI, recommended rules, no errors)"
scripts/lint-openapi.sh 2>&1 | tee -a "$log"
echo "== API fuzzing against a real server (scripts/fuzz-api.sh: Schemathesis, every check, bounded time)"
scripts/fuzz-api.sh 2>&1 | tee -a "$log"
echo "== TypeScript SDK against a real server (sdk/typescript: npm ci from the lockfile, npm test)"
(cd sdk/typescript && npm ci --no-audit --no-fund && npm test) 2>&1 | tee -a "$log"
echo "== Web UI in headless Chromium against a real server (tests/ui: npm ci from the lockfile, npm test)"
(cd tests/ui && npm ci --no-audit --no-fund && npm test) 2>&1 | tee -a "$log"

passed=$(grep -oE '^test result: .* ([0-9]+) passed' "$log" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -oE '^test result: .* ([0-9]+) failed' "$log" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
node_pass=$(grep -oE '^# pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
node_fail=$(grep -oE '^# fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
echo "$((passed + node_pass)) passed, $((failed + node_fail)) failed"
