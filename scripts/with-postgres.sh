#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL 15 cluster:
#
#   scripts/with-postgres.sh cargo test -p amika-store
#
# The command sees AMIKA_TEST_DATABASE_URL (database amika_test, user postgres, trust auth on
# 127.0.0.1), AMIKA_TEST_PG_BIN and AMIKA_TEST_PG_PORT. The cluster lives in a fresh directory
# under /tmp and is stopped and removed when the command ends, however it ends; the script exits
# with the command's status. AMIKA_TEST_PG_PORT, if set, is the first port tried (default 55432).
#
# Works as root on a fresh Debian 12 machine: installs postgresql when missing, and runs the
# server as the `postgres` OS user because initdb refuses to run as root.
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi

pg_bin=/usr/lib/postgresql/15/bin
is_root=false
[[ $(id -u) -eq 0 ]] && is_root=true

if [[ ! -x $pg_bin/initdb ]]; then
  if $is_root && command -v apt-get >/dev/null; then
    echo "with-postgres: installing postgresql ..." >&2
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have no package lists yet.
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }
  fi
  if [[ ! -x $pg_bin/initdb ]]; then
    echo "with-postgres: PostgreSQL 15 not found in $pg_bin; install it (apt-get install postgresql)" >&2
    exit 1
  fi
fi

if $is_root && ! id postgres >/dev/null 2>&1; then
  useradd --system --user-group --no-create-home --shell /usr/sbin/nologin postgres
fi

# Under /tmp explicitly, not $TMPDIR: as root that may be a directory postgres cannot enter.
dir=$(mktemp -d /tmp/amika-pg.XXXXXX)
data=$dir/data
log=$dir/postgres.log
$is_root && chown postgres: "$dir"

# Run a PostgreSQL tool as the cluster's owner, from a directory it can read.
as_owner() {
  if $is_root; then
    (cd "$dir" && runuser -u postgres -- "$@")
  else
    (cd "$dir" && "$@")
  fi
}

started=false
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if $started; then
    # immediate: nothing in a throwaway cluster is worth a clean shutdown.
    as_owner "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# locale C: initdb fails when the environment names a locale the machine has not generated.
# (Its output goes to a file of ours; the server log must be created by the server's user.)
if ! as_owner "$pg_bin/initdb" -D "$data" -A trust -U postgres --no-sync -E UTF8 --locale=C >"$dir/initdb.log" 2>&1; then
  cat "$dir/initdb.log" >&2
  echo "with-postgres: initdb failed" >&2
  exit 1
fi

# Try ports upwards from the default until one binds: another cluster (or another run of this
# script) may hold the first.
port=${AMIKA_TEST_PG_PORT:-55432}
for _ in $(seq 1 50); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    if as_owner "$pg_bin/pg_ctl" -D "$data" -l "$log" -w -t 30 \
      -o "-p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c listen_addresses=127.0.0.1" \
      start >/dev/null 2>&1; then
      started=true
      break
    fi
  fi
  port=$((port + 1))
done
if ! $started; then
  # No log when every port was already taken and pg_ctl never ran.
  if [[ -f $log ]]; then cat "$log" >&2; fi
  echo "with-postgres: could not start PostgreSQL on any port from ${AMIKA_TEST_PG_PORT:-55432}" >&2
  exit 1
fi

"$pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres amika_test

export AMIKA_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/amika_test"
export AMIKA_TEST_PG_BIN=$pg_bin
export AMIKA_TEST_PG_PORT=$port
echo "with-postgres: PostgreSQL on 127.0.0.1:$port ($dir)" >&2

# Not exec: the trap must outlive the command to remove the cluster.
set +e
"$@"
exit $?
