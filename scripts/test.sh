#!/usr/bin/env bash
# The README's second command: every check and every test, on a fresh machine too.
# Installs what the tests need, starts a throwaway PostgreSQL, runs fmt, clippy and all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (SQLite and a throwaway PostgreSQL)"
scripts/with-postgres.sh cargo test --workspace --no-fail-fast
