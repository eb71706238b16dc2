#!/usr/bin/env bash
# Property-based fuzzing of the REST API against its own OpenAPI document (issue 17).
#
# Starts a real `amika server` (SQLite and real bubblewrap sandboxes, in a temp data dir, on a
# free port of 127.0.0.1, with its SSH endpoint on, so that minting SSH access is fuzzed too), takes the first admin's API key from DATA_DIR/admin-api-key and runs
# Schemathesis on the document the server serves at /openapi.json, with every check (`--checks
# all`: no 5xx, every status and header documented, responses matching their schemas, schema-valid
# requests accepted, invalid ones rejected, no request accepted without the key, stateful links
# such as create → get → delete) in every phase, for a bounded time. Exits non-zero on any
# failure. Its settings (and why each is what it is) are in scripts/schemathesis.toml.
#
# Usage: scripts/fuzz-api.sh [extra `st run` arguments]
#   AMIKA_BIN        the amika binary (default target/debug/amika, built if missing)
#   FUZZ_MAX_TIME    seconds of fuzzing at most (default 120; CI keeps the whole step under ~3 min)
#   FUZZ_SEED        the random seed (default: a fresh one, printed, so a failure can be replayed)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
st=$(scripts/install-deps.sh schemathesis)
bin=${AMIKA_BIN:-$root/target/debug/amika}
[[ -x "$bin" ]] || cargo build -p amika-cli
dir=$(mktemp -d)
server=
cleanup() {
  if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
    kill -TERM "$server" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server" 2>/dev/null || true
  fi
  # Sandboxes outlive a stopped server (a restart finds them running): the run deletes its own
  # through the API (below); any left (one mid-create when the server stopped) is ended here,
  # by pid, found by this run's data dir in its command line.
  local p cmd
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    [[ "$cmd" == *"$dir/data/sandboxes/"* ]] && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  rm -rf "$dir" 2>/dev/null || true
}
trap cleanup EXIT
# The server must use its own temp state, whatever the caller's environment says.
env -u AMIKA_DATABASE_URL -u AMIKA_MASTER_KEY RUST_LOG=warn \
  "$bin" server --listen 127.0.0.1:0 --ssh-listen 127.0.0.1:0 --warm-sandboxes 0 --data-dir "$dir/data" \
  >"$dir/stdout" 2>"$dir/stderr" &
server=$!
url=
for _ in $(seq 300); do
  url=$(sed -nE 's/^amika server listening on (\S+).*/\1/p' "$dir/stdout" | head -n1)
  [[ -n "$url" ]] && break
  kill -0 "$server" 2>/dev/null || { cat "$dir/stdout" "$dir/stderr" >&2; echo "amika server exited before listening" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$url" ]] || { cat "$dir/stderr" >&2; echo "amika server did not listen within 30 s" >&2; exit 1; }
url=${url%/}
key=$(cat "$dir/data/admin-api-key")
seed=${FUZZ_SEED:-$RANDOM$RANDOM}
echo "fuzzing $url with $("$st" --version) (seed $seed, at most ${FUZZ_MAX_TIME:-120} s)"
status=0
# The key goes in through the environment (the config file reads it), never on a command line.
AMIKA_FUZZ_KEY="$key" "$st" --config-file "$root/scripts/schemathesis.toml" run \
  "$url/openapi.json" --url "$url" \
  --checks all --max-time "${FUZZ_MAX_TIME:-120}" --seed "$seed" \
  --report junit --report-dir "$dir/report" "$@" || status=$?
# curl reads the key from a file (0600), never from its command line.
(umask 077 && printf 'Authorization: Bearer %s\n' "$key" >"$dir/auth-header")
# The run's key must still work at the end (a run that lost it tested little after that).
if ! curl -fsS -o /dev/null -H @"$dir/auth-header" "$url/api/v0beta1/me" 2>/dev/null; then
  echo "fuzz: the run's API key no longer authenticates; its audit trail:" >&2
  sqlite3 "$dir/data/amika.db" "select created_at, action, object_type, object_id from audit_events where object_type = 'api_key'" >&2 2>/dev/null || true
  status=1
fi
# Delete the sandboxes the run created through the API: the server ends their processes, their
# network helpers and cgroups (a stopped server leaves its sandboxes running, by design).
curl -fsS -H @"$dir/auth-header" "$url/api/v0beta1/sandboxes" 2>/dev/null \
  | python3 -c 'import json, sys; print("\n".join(s["id"] for s in json.load(sys.stdin)))' \
  | while read -r id; do
      curl -fsS -o /dev/null -X DELETE -H @"$dir/auth-header" "$url/api/v0beta1/sandboxes/$id" || true
    done || true
if [[ $status -ne 0 ]]; then
  echo "== the server's log (warnings and errors)" >&2
  tail -n 50 "$dir/stderr" >&2
  echo "fuzz: schemathesis failed (exit $status); replay with FUZZ_SEED=$seed scripts/fuzz-api.sh" >&2
fi
exit "$status"
