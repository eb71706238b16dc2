#!/usr/bin/env bash
# Smoke run of every benchmark, so that none can rot: each runs with tiny counts (`--smoke`,
# which never appends to bench/RESULTS.md) and must print its p50/p95/p99 table. The storage-bound
# ones run on SQLite, and on PostgreSQL too when AMIKA_TEST_DATABASE_URL is set (run this under
# scripts/with-postgres.sh, as scripts/test.sh does). Debug build: numbers are meaningless here.
#
#   bench/smoke.sh            # or: scripts/with-postgres.sh bench/smoke.sh
#
# Ends with one `test result:` line that scripts/test.sh counts.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q -p amika-bench --bins
bin=target/debug

backends=(sqlite)
if [[ -n "${AMIKA_TEST_DATABASE_URL:-}" ]]; then
  backends+=(postgres)
elif [[ "${AMIKA_SKIP_POSTGRES:-}" != 1 ]]; then
  echo "bench smoke: AMIKA_TEST_DATABASE_URL is not set: run under scripts/with-postgres.sh (or set AMIKA_SKIP_POSTGRES=1)" >&2
  exit 1
fi

passed=0
failed=0
failures=()
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# run NAME ARGS...: the benchmark must exit 0, print a results table with p50 (or requests/s)
# and real numbers in it, and say that it recorded nothing.
run() {
  local label="$1"
  shift
  echo "== bench smoke: $label"
  if "$bin/$@" --smoke >"$out" 2>&1 \
    && grep -qE '^\| (measurement|endpoint|operation|network) \|' "$out" \
    && grep -qE '[0-9]+\.[0-9]+ (ms|µs|MiB)' "$out" \
    && grep -q 'not recorded' "$out"; then
    passed=$((passed + 1))
    grep -E '^\| ' "$out" | head -4
  else
    failed=$((failed + 1))
    failures+=("$label")
    cat "$out"
  fi
}

run "create-to-ready" create-to-ready
# With the coder preset's layer: installed into the presets dir the tests share
# (~/.cache/amika-test-presets, which the server tests' preset_coder has filled by then; npm's
# shared cache otherwise), so this adds seconds, not a download.
run "create-to-ready --preset coder" create-to-ready --preset coder
run "injection" injection
for b in "${backends[@]}"; do
  run "api ($b)" api --backend "$b"
  run "vault ($b)" vault --backend "$b"
  # 10 s, 10 readers, 2 create/exec/delete loops, the hostile sandbox's first attacks; exits
  # non-zero when any error is counted, which fails this run.
  run "soak ($b)" soak --backend "$b"
done
run "scale" scale
run "create-repo" create-repo
run "agent-stream" agent-stream
run "ssh" ssh
run "snapshot" snapshot
run "cli-path" cli-path
# 4 create + delete loops for 3 s beside 4 raw bwrap loops.
run "throughput" throughput

if [[ $failed -eq 0 ]]; then
  echo "test result: ok. $passed passed; 0 failed (bench smoke)"
else
  echo "test result: FAILED. $passed passed; $failed failed (bench smoke: ${failures[*]})"
  exit 1
fi
