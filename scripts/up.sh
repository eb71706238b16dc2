#!/usr/bin/env bash
# The README's first command: install what sandboxes need (when run as root), build amika and
# start a server on 127.0.0.1:7070 with the embedded SQLite database. Extra args go to `amika up`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh runtime
cargo build --release --bin amika
exec target/release/amika up "$@"
